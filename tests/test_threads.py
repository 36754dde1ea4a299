"""course_utils.core.threads: the OpenMP wait policy is set before torch loads, a user's choice wins, and a torch
imported first is reported. Each case runs in a fresh interpreter (the policy is read when libgomp loads)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return subprocess.run([sys.executable, "-c", code], env={**clean, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=120)


def test_importing_the_kit_sets_passive_before_torch_loads():
    # a finder that records the policy at the moment torch is first imported, then lets the import go on
    done = _python("import os, sys\n"
                   "class Spy:\n"
                   "    def find_spec(self, name, path=None, target=None):\n"
                   "        if name == 'torch':\n"
                   "            print('at torch import:', os.environ.get('OMP_WAIT_POLICY'))\n"
                   "            sys.meta_path.remove(self)\n"
                   "sys.meta_path.insert(0, Spy())\n"
                   "import course_utils\n"
                   "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["at", "torch", "import:", "PASSIVE", "PASSIVE", "True"]
    assert "RuntimeWarning" not in done.stderr


def test_a_users_policy_is_kept():
    done = _python("import os, course_utils; print(os.environ['OMP_WAIT_POLICY'])", OMP_WAIT_POLICY="ACTIVE")
    assert done.returncode == 0 and done.stdout.strip() == "ACTIVE", done.stderr
    assert "RuntimeWarning" not in done.stderr


def test_torch_imported_first_is_reported_with_the_fix():
    done = _python("import os, torch, course_utils; print(os.environ.get('OMP_WAIT_POLICY'))")
    assert done.returncode == 0 and done.stdout.strip() == "None", done.stderr
    assert "RuntimeWarning" in done.stderr and "import course_utils before torch" in done.stderr
