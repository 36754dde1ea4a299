"""How torch's CPU threads wait, chosen for the laptop a student has in class: two to eight cores, shared with a
browser and often a video call.

torch's CPU kernels run on an OpenMP pool (libgomp in the pip wheels). By default a pool thread that runs out of
work spins for a while before it sleeps, so that the next parallel region starts at once. On a busy machine the
spinning threads take the cores from the work they wait for (and from everything else): with one busy loop per
core the explainers ran 2–19× slower than idle (8× for SmoothGrad and Grad-CAM, 19× for occlusion on signals).
With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps at once, and the same calls ran 2.1–3.0× slower than
idle, about the fair share of two processes per core. The price is paid idle: a sleeping thread must be woken
at every parallel region, which costs most on calls of a few milliseconds (up to about 1.5× their idle time)
and little on large passes (RISE, occlusion on tiles: about 1.1–1.3×). One thread per process, the other option
measured, stayed within 2.3× busy but cost 1.3–2× idle on every call; a short spin (``GOMP_SPINCOUNT`` 10³–10⁴)
behaved like PASSIVE. ``python -m benchmarks bench_busy`` measures the busy / idle ratio of every explainer on
the machine at hand, idle and busy rounds interleaved.

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
