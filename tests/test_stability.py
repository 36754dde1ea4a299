"""Budget and seed dependence of stochastic explainers (course_utils.metrics.stability): top-k IoU by hand,
run-to-run consistency of a seed-blind and a seed-driven explainer, convergence rows against the insertion /
deletion metrics called directly, input checks."""
import pytest
import torch
from torch import nn

from course_utils.metrics import convergence, deletion, insertion, run_to_run_consistency, top_k_iou


class Fixed:
    """An 'explainer' whose map is a fixed function of the input, whatever the seed and budget."""

    def explain(self, x, target):
        return x[:, 0] ** 2


class Noise:
    """An 'explainer' whose map is noise drawn from its seed."""

    def __init__(self, seed):
        self.seed = seed

    def explain(self, x, target):
        return torch.rand(x.shape[0], *x.shape[2:], generator=torch.Generator().manual_seed(self.seed))


@pytest.fixture
def linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 3)).eval()


def test_top_k_iou_by_hand():
    a = torch.tensor([[4.0, 3, 2, 1, 0]])
    b = torch.tensor([[0.0, 3, 2, 1, 4]])
    assert top_k_iou(a, b, 2).tolist() == [pytest.approx(1 / 3)]        # {0, 1} and {4, 1}
    assert top_k_iou(a, a, 3).tolist() == [1.0]
    with pytest.raises(ValueError):
        top_k_iou(a, b, 6)
    with pytest.raises(ValueError):
        top_k_iou(a, b[:, :4], 2)


def test_a_seed_blind_explainer_agrees_with_itself_and_noise_does_not():
    x = torch.randn(8, 1, 20, generator=torch.Generator().manual_seed(1))
    target = torch.zeros(8, dtype=torch.long)
    same = run_to_run_consistency(lambda budget, seed: Fixed(), x, target, budget=10, seeds=range(3), k=4)
    assert same == {"spearman": pytest.approx(1.0), "top-4 IoU": pytest.approx(1.0)}
    noise = run_to_run_consistency(lambda budget, seed: Noise(seed), x, target, budget=10, seeds=range(5))
    assert abs(noise["spearman"]) < 0.2 and noise["top-4 IoU"] < 0.5     # 20 positions: k = 4 by default


def test_consistency_needs_two_distinct_seeds():
    x = torch.randn(2, 1, 20)
    for seeds in ([0], [1, 1], [0, 1.5]):
        with pytest.raises(ValueError):
            run_to_run_consistency(lambda budget, seed: Fixed(), x, torch.zeros(2, dtype=torch.long), 1, seeds)


def test_convergence_rows_are_the_metrics_of_each_budget(linear):
    x = torch.randn(4, 1, 20, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([0, 1, 2, 0])
    made = []

    def make(budget, seed):
        made.append((budget, seed))
        return Noise(budget)

    rows = convergence(linear, x, target, {"noise": make, "fixed": lambda b, s: Fixed()}, [3, 7], seed=5)
    assert [(r["method"], r["forward passes"]) for r in rows] == [("noise", 3), ("noise", 7), ("fixed", 3),
                                                                  ("fixed", 7)]
    assert made == [(3, 5), (7, 5)]
    maps = Noise(7).explain(x, target)
    assert rows[1]["insertion AUC"] == pytest.approx(insertion(linear, x, maps, target).mean_auc)
    assert rows[1]["deletion AUC"] == pytest.approx(deletion(linear, x, maps, target).mean_auc)
    for bad in ([], [0], [2.5]):
        with pytest.raises(ValueError):
            convergence(linear, x, target, {"fixed": lambda b, s: Fixed()}, bad)
    with pytest.raises(ValueError):
        convergence(linear, x, target, {}, [3])
