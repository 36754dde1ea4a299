"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest

import course_utils  # noqa: F401  (before torch: the threading choice in course_utils.core.threads)
import torch

from course_utils.models import VGG7, ShallowCNN1D

REPO = Path(__file__).resolve().parents[1]


def missing_shared(what: str) -> None:
    """Skip a test whose shared data is absent, or fail it where the data must be there (``.ci/run`` sets
    ``COURSE_REQUIRE_SHARED=1``), so that CI never passes by skipping."""
    message = f"{what} not found: put the course data in <repo>/../shared/data (see data/README.md)"
    if os.environ.get("COURSE_REQUIRE_SHARED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def sandbox_tool() -> str:
    """The grader's sandbox tool (bubblewrap); without it the test is skipped, or fails where it must be there
    (``.ci/run`` sets ``COURSE_REQUIRE_SANDBOX=1``; ``CI=true`` counts too)."""
    from course_utils.grading.sandbox import INSTALL_HINT, isolation_tool

    tool = isolation_tool()
    if tool is None:
        message = f"no working bubblewrap for the grader's sandbox: {INSTALL_HINT} (or `make sandbox-tools`)"
        if os.environ.get("COURSE_REQUIRE_SANDBOX") == "1" or os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tool


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data`` (the frozen MNIST-1D set, the HMT tiles); see :func:`missing_shared`."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        missing_shared(str(path))
    return path


@pytest.fixture(scope="session")
def shared_hmt(shared_data) -> Path:
    """``../shared/data/hmt``: the 5000 course tiles (WebP), ``manifest.csv`` and ``tif_sample/``."""
    path = shared_data / "hmt"
    if not (path / "manifest.csv").is_file():
        missing_shared(f"{path}/manifest.csv")
    return path


def _sharpened(model):
    """An untrained model with its classifier weights ×30, so that its softmax outputs are decisive."""
    with torch.no_grad():
        model.classifier.weight.mul_(30)
    return model.eval()


@pytest.fixture(scope="module")
def cnn1d():
    """A seeded, untrained, sharpened ShallowCNN1D (test files may override it with their own)."""
    torch.manual_seed(0)
    return _sharpened(ShallowCNN1D())


@pytest.fixture(scope="module")
def vgg():
    """A seeded, untrained, sharpened VGG7 (test files may override it with their own)."""
    torch.manual_seed(1)
    return _sharpened(VGG7())


@pytest.fixture(scope="module")
def signals():
    """Three random MNIST-1D-shaped signals (3, 1, 40)."""
    return torch.randn(3, 1, 40, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def images():
    """Three random 32-px RGB tiles (3, 3, 32, 32)."""
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def float64_case(cnn1d, vgg, signals, images):
    """``case(which)``: a float64 copy of the ``cnn1d`` ("1d") or ``vgg`` ("2d") fixture and its inputs in
    float64, for comparisons that batch-size dependent rounding must not blur."""
    def case(which):
        model, x = (cnn1d, signals) if which == "1d" else (vgg, images)
        copy = type(model)()
        copy.load_state_dict(model.state_dict())
        return copy.double().eval(), x.double()
    return case


@pytest.fixture
def assert_follows_paper_loop():
    """``check(explainer, x, paper_loop)``: the mask explainer's maps for the model's predicted classes equal
    ``paper_loop(explainer, x, target)`` (the paper's loop written the direct way) to 1e-9, and the masks moved
    from their start m = 1 (map 1 in the preservation game, 0 in the deletion game)."""
    def check(explainer, x, paper_loop):
        with torch.no_grad():
            target = explainer.model(x).argmax(1)
        ours = explainer.attribute(x, target)
        torch.testing.assert_close(ours, paper_loop(explainer, x, target), rtol=0, atol=1e-9)
        start = 1.0 if explainer.game == "preservation" else 0.0
        assert (ours - start).abs().amax() > 0.05
    return check


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The mutation suite's kill rate per notebook (tests/test_exercise_mutants.py), when it ran."""
    from tests.exercise_mutants import KILL_RATES as rates
    if rates:
        terminalreporter.write_sep("-", "exercise mutants killed (self-check FAIL and points lost), per notebook")
        for assignment, (killed, total) in sorted(rates.items()):
            terminalreporter.write_line(f"{assignment:<28} {killed:>3}/{total:<3} {100 * killed / total:5.1f} %")
