"""The conda environments and pyproject.toml declare the same dependencies; CI calls README's test command; the
wheel, installed into a new environment, runs the course from an empty folder."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _runtime_requirements() -> set[str]:
    return {r.replace(" ", "") for r in _project()["dependencies"]}


def _pyproject_requirements() -> set[str]:
    """The runtime dependencies and every extra."""
    reqs = set(_runtime_requirements())
    for extra in _project().get("optional-dependencies", {}).values():
        reqs |= {r.replace(" ", "") for r in extra}
    return reqs


def _environment_requirements(name: str) -> tuple[set[str], list[str]]:
    """(requirements, pip options such as --extra-index-url) of the pip section of a conda environment file."""
    env = yaml.safe_load((ROOT / name).read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r.replace(" ", "") for r in pip if not r.startswith("-")}, [r for r in pip if r.startswith("-")]


def test_environment_yml_matches_pyproject():
    """The students' environment.yml: exactly the runtime dependencies, no extra (tests, docs, cluster)."""
    py, (env, _) = _runtime_requirements(), _environment_requirements("environment.yml")
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_environment_dev_yml_matches_pyproject():
    py, (env, _) = _pyproject_requirements(), _environment_requirements("environment-dev.yml")
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment-dev.yml: {sorted(env - py)}"


def test_students_environment_takes_the_cpu_build_of_torch():
    _, options = _environment_requirements("environment.yml")
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]


def test_no_newer_torch_pin():
    for req in _pyproject_requirements():
        name = re.split(r"[<>=!~\[]", req)[0]
        if name in {"torch", "torchvision"}:
            assert "==" not in req and "<" not in req, f"{req}: declare a range such as torch>=2.2, not a pin"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and re.search(r"^make test$", ci, re.M)


def test_readme_is_short_and_sets_up_students_first():
    """A newcomer's README: at most 200 lines, the students' set-up (venv on every OS, conda, CPU torch) before the
    instructors', and the grader's sandbox requirement."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    students, instructors = readme.index("## Students"), readme.index("## Instructors")
    assert students < instructors
    for step in ("source .venv/bin/activate", ".venv\\Scripts\\activate", "conda activate",
                 "--index-url https://download.pytorch.org/whl/cpu", "pip install -e ."):
        assert step in readme[students:instructors], f"the students' quick start must give {step!r}"
    assert "bubblewrap" in readme[instructors:]


# -- the wheel is the product --------------------------------------------------------------------------------
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "course_utils", "notebooks", "solutions")
TEST_ONLY = {"pytest", "pytest-timeout", "nbval", "mnist1d", "captum", "grad-cam", "torchcam", "scikit-image",
             "scikit-learn", "pyyaml", "dask", "playwright", "nbconvert", "sphinx", "myst-nb", "sphinx-book-theme",
             "sphinx-mathjax-offline"}


def _run(args, **kwargs):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    return done


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """The wheel built from a copy of the sources (no build isolation: no download), installed into a new venv
    that reuses this environment's packages (torch...) through a .pth file, as ``--system-site-packages`` would."""
    tmp = tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp / "src" / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (tmp / "src").mkdir(exist_ok=True)
            shutil.copy2(source, tmp / "src" / name)
    built = _run([sys.executable, "-m", "pip", "wheel", tmp / "src", "--no-deps", "--no-build-isolation", "-v",
                  "-w", tmp / "dist"])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("course_utils-*.whl")
    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", venv]).returncode == 0
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "outer-environment.pth").write_text("\n".join(sorted(outer)) + "\n")
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", wheel])
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    home = tmp / "empty"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "JUPYTER"))}
    env.update(COURSE_DATA_DIR=str(tmp / "data"), COURSE_HEADLESS="1", JUPYTER_DATA_DIR=str(tmp / "jupyter"))
    return SimpleNamespace(wheel=wheel, build_log=built.stdout + built.stderr, python=python, bin=python.parent,
                           cwd=home, env=env, tmp=tmp)


def test_the_build_warns_of_nothing_and_the_license_is_spdx(wheel_venv):
    assert "deprecat" not in wheel_venv.build_log.lower(), wheel_venv.build_log[-3000:]
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"


def test_the_wheel_carries_the_notebooks_and_only_runtime_requirements(wheel_venv):
    with zipfile.ZipFile(wheel_venv.wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip() for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    for folder in ("notebooks", "solutions"):
        shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith(f"course_utils/course_notebooks/{folder}/"))
        assert shipped == sorted(p.name for p in (ROOT / folder).glob("[0-9][0-9]_*.ipynb")), folder
    runtime = {re.split(r"[<>=!~\[; ]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert runtime and not runtime & TEST_ONLY, f"test/docs packages in the runtime requirements: {runtime & TEST_ONLY}"


def test_the_installed_wheel_runs_a_student_notebook_from_an_empty_folder(wheel_venv):
    v = wheel_venv
    where = _run([v.python, "-c", "import course_utils, jupyter_client.kernelspec as k; print(course_utils.__file__);"
                  "print(k.KernelSpecManager().get_kernel_spec('python3').argv[0])"], cwd=v.cwd, env=v.env)
    kit, kernel_python = where.stdout.split()
    assert Path(kit).is_relative_to(v.tmp / "venv"), f"imported {kit}, not the wheel"
    assert Path(kernel_python).parent == v.bin or kernel_python in ("python", "python3"), kernel_python

    script = v.bin / "course-notebooks"
    nothing = _run([script, "run", "nowhere"], cwd=v.cwd, env=v.env)
    assert nothing.returncode != 0 and "no course notebooks" in nothing.stderr
    no_checkout = _run([v.python, "-m", "course_utils.authoring.course", "--fast"], cwd=v.cwd, env=v.env)
    assert no_checkout.returncode != 0 and "course-notebooks copy" in no_checkout.stderr
    copied = _run([script, "copy", "class"], cwd=v.cwd, env=v.env)
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (v.cwd / "class").iterdir()) == sorted(
        p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

    ran = _run([v.python, "-m", "papermill", "class/00_setup_and_tour.ipynb", "run.ipynb", "-p", "fast", "True",
                "--log-level", "ERROR"], cwd=v.cwd, env=v.env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (v.tmp / "data" / "mnist1d_course_utils.pkl").is_file(), "the data went to the data home"
    assert sorted(p.name for p in v.cwd.iterdir()) == ["class", "run.ipynb"], "nothing else beside the notebook"

    grade = _run([v.bin / "course-grade", "--help"], cwd=v.cwd, env=v.env)
    assert grade.returncode == 0 and "--assignment" in grade.stdout
