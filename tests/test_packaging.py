"""The conda environments and pyproject.toml declare the same dependencies; CI calls README's test command."""
import re
import tomllib
from pathlib import Path

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
