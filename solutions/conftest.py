"""nbval runs of the solution notebooks (``make test``: ``pytest --nbval-lax``), in fast mode and headless.

nbval cannot inject papermill parameters, so fast mode reaches the notebooks' ``parameters`` cells through
``COURSE_FAST`` (read there by ``env_default``); ``COURSE_HEADLESS`` makes the widgets draw static figures. The
committed notebooks carry no outputs: the expected text of each ``# NBVAL_CHECK_OUTPUT`` cell lives in its
metadata (``course_utils.authoring.notebooks.EXPECTED_OUTPUT``) and is handed to nbval at collection. Besides nbval's
own checks (no cell raises; checked cells print exactly their expected text), every cell must stay free of
warnings and widgets, and a solution must pass its own self-checks.
"""
import os

import pytest
from nbval.plugin import IPyNbCell

from course_utils.authoring.notebooks import expected_outputs

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("COURSE_HEADLESS", "1")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _problem(cell, outputs) -> str | None:
    """Why an executed solution cell is unacceptable although nbval passed it, or None."""
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr" and "warning" in out["text"].lower():
            return f"the cell warned:\n{out['text']}"
        if WIDGET_MIME in out.get("data", {}):
            return "the cell showed a widget in a headless run"
    stdout = "".join(o.get("text", "") for o in outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stdout")
    if "self_check" in cell.get("metadata", {}).get("tags", []) and "FAIL" in stdout:
        return f"the solution fails its own self-check:\n{stdout}"
    return None


def pytest_collection_modifyitems(items):
    """Give nbval the expected outputs kept in the metadata, as if the notebook had been saved with them."""
    for item in items:
        if isinstance(item, IPyNbCell):
            expected = expected_outputs(item.cell)
            if expected:
                item.cell.outputs, item.cell.execution_count = expected, 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    outputs = getattr(item, "test_outputs", None)
    if call.when == "call" and report.passed and outputs is not None:
        problem = _problem(item.cell, outputs)
        if problem:
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid}: {problem}"
