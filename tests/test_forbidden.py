"""The guard against forbidden code (course_utils.forbidden): every way of reaching a module is seen."""
import importlib
import sys
import threading

import pytest
import torch

from course_utils.forbidden import ForbiddenCalls, forbidden_message
from course_utils.metrics import keep_top_k

X, MAPS = torch.rand(2, 1, 6), torch.rand(2, 6)


def _import_statement():
    from course_utils.metrics import keep_top_k as reached
    return reached(X, MAPS, 0.5)


def _importlib():
    return importlib.import_module("course_utils.metrics").keep_top_k(X, MAPS, 0.5)


def _dunder_import():
    return __import__("course_utils.metrics", fromlist=["keep_top_k"]).keep_top_k(X, MAPS, 0.5)


def _sys_modules():
    return sys.modules["course_utils.metrics.drop_increase"].keep_top_k(X, MAPS, 0.5)


def _imported_earlier():
    return keep_top_k(X, MAPS, 0.5)


def _in_a_thread():
    result = []
    worker = threading.Thread(target=lambda: result.append(keep_top_k(X, MAPS, 0.5)))
    worker.start()
    worker.join()
    return result[0]


@pytest.mark.parametrize("reach", [_import_statement, _importlib, _dunder_import, _sys_modules, _imported_earlier,
                                   _in_a_thread])
def test_every_way_of_reaching_a_forbidden_module_is_recorded(reach):
    with ForbiddenCalls(["course_utils.metrics"]) as guard:
        reach()
    assert guard.violation == "course_utils.metrics.drop_increase.keep_top_k"


def test_allowed_code_and_other_modules_pass():
    with ForbiddenCalls(["course_utils.metrics", "captum"]) as guard:
        torch.rand(3).sort(stable=True)
        importlib.import_module("course_utils.explainers.base").upsample(torch.rand(1, 1, 4), (8,))
    assert guard.violation is None


def test_a_forbidden_function_leaves_its_module_siblings_allowed():
    from course_utils.explainers import meaningful_perturbation as mp
    with ForbiddenCalls(["course_utils.explainers.meaningful_perturbation.total_variation"]) as guard:
        mp.shift(torch.rand(1, 1, 5), [1])
    assert guard.violation is None
    with ForbiddenCalls(["course_utils.explainers.meaningful_perturbation.total_variation"]) as guard:
        mp.total_variation(torch.rand(1, 1, 5))
    assert guard.violation == "course_utils.explainers.meaningful_perturbation.total_variation"


def test_third_party_packages_and_classes():
    with ForbiddenCalls(["torch.nn"]) as guard:
        torch.nn.Conv1d(1, 1, 3)
    assert guard.violation.startswith("torch.nn.modules.conv.Conv1d")


def test_switching_the_guard_off_is_a_violation_and_the_previous_tracer_returns():
    def debugger(frame, event, arg):
        return None

    sys.settrace(debugger)
    try:
        with ForbiddenCalls(["course_utils.metrics"]) as guard:
            sys.settrace(None)
        assert guard.violation.startswith("sys.settrace")
        assert sys.gettrace() is debugger
    finally:
        sys.settrace(None)


def test_modules_that_are_not_installed_are_inert_and_bad_names_are_refused():
    with ForbiddenCalls(["no_such_package.anything"]) as guard:
        keep_top_k(X, MAPS, 0.5)
    assert guard.violation is None
    with pytest.raises(ValueError, match="list of dotted names"):
        ForbiddenCalls("course_utils.metrics")
    with pytest.raises(ValueError, match="dotted Python name"):
        ForbiddenCalls(["course_utils/metrics"])


def test_the_message_names_the_call_and_the_rule():
    text = forbidden_message("course_utils.metrics.drop_increase.keep_top_k", ("course_utils.metrics",))
    assert "course_utils.metrics.drop_increase.keep_top_k" in text and "it may not use course_utils.metrics" in text
