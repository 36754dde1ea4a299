"""Sandbox child: run one notebook with papermill, storing at most a fixed number of output bytes.

Started by :func:`course_utils.grading.execute.execute_notebook` as ``python -I .../run_notebook.py ...`` (by
file path, isolated, so it imports only the standard library and papermill, not torch: one less second per
submission). It
injects the grading parameters into the notebook's ``parameters`` cell, stops a cell after the per-cell
timeout, drops outputs past ``--max-output-bytes`` as they arrive (with a note in the notebook), and reports
``{"status", "reason", "truncated"}`` as JSON on ``--report-fd``, a pipe the kernel does not inherit and
cannot reopen through ``/proc`` (this process makes itself non-dumpable, which closes its ``/proc`` entries to
the kernel's user).
"""
import argparse
import json
import os
import sys

STATUS_OK, STATUS_ERROR, STATUS_TIMEOUT = "ok", "error", "timeout"
STATUS_KERNEL_DIED, STATUS_MEMORY = "kernel died", "memory limit"
KERNEL_NOT_STARTED, KERNEL_START_ATTEMPTS = "before replying to kernel_info", 3
"""A kernel that dies before it answers ``kernel_info`` has run none of the notebook, so nothing the student wrote
can have killed it: the child starts it again, up to ``KERNEL_START_ATTEMPTS`` times (CI saw one such death in a
parallel grading run), rather than report the notebook as failing."""


def capped_engine(max_output_bytes: int):
    """A papermill engine whose client stores at most ``max_output_bytes`` of outputs per notebook."""
    import nbformat
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine

    class CappedClient(PapermillNotebookClient):
        stored = 0
        truncated = False

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg["content"], default=str))
            if CappedClient.stored + size <= max_output_bytes:
                CappedClient.stored += size
                return super().output(outs, msg, display_id, cell_index)
            if not CappedClient.truncated:
                CappedClient.truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader: outputs beyond {max_output_bytes} bytes were dropped from here on]\n"))
            return None

    class CappedEngine(NBClientEngine):
        client = CappedClient

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, start_timeout=60, execution_timeout=None,
                                     **_ignored):
            return CappedClient(nb_man, kernel_name=kernel_name, timeout=execution_timeout,
                                startup_timeout=start_timeout, interrupt_on_timeout=False).execute()

    return CappedEngine


def run(args) -> dict:
    """Execute ``args.input`` into ``args.output``; the outcome as a STATUS_* value, a reason and a flag."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    engine = capped_engine(args.max_output_bytes)
    papermill_engines.register("course-grade", engine)
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        try:
            papermill.execute_notebook(args.input, args.output, parameters=json.loads(args.parameters),
                                       engine_name="course-grade", kernel_name="python3", progress_bar=False,
                                       execution_timeout=args.timeout_cell, start_timeout=120,
                                       cwd=os.path.dirname(os.path.abspath(args.input)))
            status, reason = STATUS_OK, "ran to the end"
        except PapermillExecutionError as err:
            status = STATUS_MEMORY if err.ename == "MemoryError" else STATUS_ERROR
            reason = f"cell [{err.exec_count}] raised {err.ename}: {str(err.evalue)[:300]}"
        except CellTimeoutError:
            status, reason = STATUS_TIMEOUT, f"a cell ran longer than the per-cell limit of {args.timeout_cell:g} s"
        except DeadKernelError:
            status, reason = STATUS_KERNEL_DIED, "the kernel died (os._exit, a crash, or a memory/file limit)"
        except Exception as err:  # papermill/nbclient raise many kinds (bad notebook, kernel start failure)
            status, reason = STATUS_ERROR, f"{type(err).__name__}: {str(err)[:300]}"
            if KERNEL_NOT_STARTED in str(err):
                if attempt < KERNEL_START_ATTEMPTS:
                    continue
                reason += f" (the kernel was started {KERNEL_START_ATTEMPTS} times)"
        break
    return {"status": status, "reason": reason, "truncated": engine.client.truncated}


def _not_dumpable() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def main(argv=None) -> None:
    # jsonschema (via nbformat) optionally imports rfc3987_syntax, which builds a grammar at import time
    # (about 1 s of CPU per submission); nbformat never validates IRIs, so this child goes without it.
    sys.modules.setdefault("rfc3987_syntax", None)
    parser = argparse.ArgumentParser(description="Sandbox child of course-grade (not for direct use).")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--parameters", required=True)
    parser.add_argument("--timeout-cell", type=float, required=True)
    parser.add_argument("--max-output-bytes", type=int, required=True)
    parser.add_argument("--report-fd", type=int, required=True)
    args = parser.parse_args(argv)
    os.set_inheritable(args.report_fd, False)
    _not_dumpable()
    outcome = run(args)
    with os.fdopen(args.report_fd, "wb") as pipe:
        pipe.write(json.dumps(outcome).encode())


if __name__ == "__main__":
    sys.exit(main())
