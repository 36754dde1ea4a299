"""How torch's CPU threads wait, chosen for the laptop a student has in class: two to eight cores, shared with a
browser and often a video call.

torch's CPU kernels run on an OpenMP pool (libgomp in the pip wheels). By default a pool thread that runs out of
work spins for a while before it sleeps, so that the next parallel region starts at once. On an idle machine
that saves a few microseconds per layer; on a busy one the spinning threads take the cores from the work they
wait for (and from everything else), and the explainers, which run many small layers, slowed down 4–10× with
one busy process per core. With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps at once: with one busy loop
per core every explainer then stays near the fair share (about 2× its idle time; ``python -m benchmarks
bench_busy`` measures it, idle and busy rounds interleaved), and the idle cost is within the benchmark's noise
(``passive / active idle`` column; see ``docs/speed.md``). One thread instead of the pool also avoids the
spinning, but costs up to 2× on an idle machine for the larger passes.

libgomp reads the variable once, when it is loaded, i.e. when torch is first imported. So
:func:`configure_threads` runs from ``course_utils/__init__.py`` before anything imports torch, and sets the
variable only if the user has not set it (their choice wins; child processes such as notebook kernels inherit
it). If torch was imported before course_utils, it is too late: a warning says so and how to fix it.
"""
from __future__ import annotations

import os
import sys
import warnings

WAIT_POLICY = "PASSIVE"


def configure_threads() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for torch's OpenMP pool unless the user set it; warn if torch is already
    loaded without it (its threads then spin while they wait)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    if "torch" in sys.modules:
        warnings.warn("torch was imported before course_utils, so its CPU threads spin while they wait, which is "
                      "several times slower on a busy laptop: import course_utils before torch, or set "
                      f"OMP_WAIT_POLICY={WAIT_POLICY} in the environment before starting Python.",
                      RuntimeWarning, stacklevel=3)
        return
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
