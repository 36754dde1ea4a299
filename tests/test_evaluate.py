"""The comparison table: evaluate() end to end, its CSV and plot, the command line, and — on the shipped
MNIST-1D model — that a sane explainer beats random maps (measured, not assumed)."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import course_utils.evaluate as ev
from course_utils.explainers.base import Explainer
from course_utils.metrics import deletion, drop_increase, insertion, localisation
from course_utils.models import ShallowCNN1D

REPO = Path(__file__).resolve().parents[1]


class InputGradient(Explainer):
    """|∂y_c/∂x|, a stand-in gradient explainer."""

    reduction = "abs_max"

    def _attribute(self, x, target):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.logits(x, target).sum(), x)
        return grad


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = ShallowCNN1D(channels=8)
    dataset = SimpleNamespace(x=torch.randn(12, 1, 40, generator=torch.Generator().manual_seed(1)))
    return model, dataset


def test_evaluate_table_matches_the_metrics_on_the_same_maps(tiny, tmp_path):
    model, dataset = tiny
    model.train()
    out = tmp_path / "sub" / "table.csv"
    table = ev.evaluate(model, dataset, [("grad", InputGradient(model))], batch_size=5, progress=False, out=out)
    assert model.training
    assert list(table.columns) == ["method", "n", *ev.METRICS]
    assert table["method"].tolist() == ["grad"] and table["n"].tolist() == [12]
    maps = InputGradient(model).explain(dataset.x)
    row = table.iloc[0]
    assert row["Drop%"] == pytest.approx(drop_increase(model, dataset.x, maps, keep=0.3).drop, rel=1e-6)
    assert row["Increase%"] == pytest.approx(drop_increase(model, dataset.x, maps, keep=0.3).increase)
    assert row["insertion AUC"] == pytest.approx(insertion(model, dataset.x, maps, step=1).mean_auc, rel=1e-6)
    assert row["deletion AUC"] == pytest.approx(deletion(model, dataset.x, maps, step=1).mean_auc, rel=1e-6)
    assert row["seconds per sample"] > 0
    pd.testing.assert_frame_equal(pd.read_csv(out), table, check_dtype=False)


def test_localisation_columns_when_the_dataset_has_positions(tiny):
    model, dataset = tiny
    truth = torch.rand(12, 40, generator=torch.Generator().manual_seed(2)) < 0.3
    table = ev.evaluate(model, SimpleNamespace(x=dataset.x, positions=truth), [("grad", InputGradient(model))],
                        n=7, seed=3, progress=False)
    assert list(table.columns) == ["method", "n", *ev.METRICS, *ev.LOCALISATION]
    subset = ev.subset_indices(12, 7, 3)
    expected = localisation(InputGradient(model).explain(dataset.x[subset]), truth[subset])
    for column, value in expected.items():
        assert table.iloc[0][column] == pytest.approx(value, rel=1e-6)
    with pytest.raises(ValueError, match="positions must be a bool tensor"):
        ev.evaluate(model, SimpleNamespace(x=dataset.x, positions=truth[:5]), ["saliency"], progress=False)


def test_subset_is_seeded_and_registry_names_work(tiny):
    model, dataset = tiny
    a = ev.evaluate(model, dataset, ["saliency"], n=5, seed=1, progress=False)
    b = ev.evaluate(model, dataset, ["saliency"], n=5, seed=1, progress=False)
    assert a["n"].tolist() == [5]
    pd.testing.assert_frame_equal(a.drop(columns="seconds per sample"), b.drop(columns="seconds per sample"))
    assert ev.subset_indices(12, 5, 1).tolist() == ev.subset_indices(12, 5, 1).tolist()
    assert ev.subset_indices(12, 5, 1).tolist() != ev.subset_indices(12, 5, 2).tolist()


def test_plot_has_one_panel_per_metric(tiny):
    model, dataset = tiny
    import matplotlib.pyplot as plt

    table = ev.evaluate(model, dataset, [("grad", InputGradient(model)), "random"], progress=False)
    fig = ev.plot_evaluation(table)
    assert len(fig.axes) == len(ev.METRICS)
    plt.close(fig)
    truth = torch.zeros(12, 40, dtype=torch.bool)
    truth[:, 10:20] = True
    located = ev.evaluate(model, SimpleNamespace(x=dataset.x, positions=truth), ["random"], progress=False)
    fig = ev.plot_evaluation(located)
    assert len(fig.axes) == len(ev.METRICS) + len(ev.LOCALISATION)
    plt.close(fig)
    with pytest.raises(ValueError, match="columns"):
        ev.plot_evaluation(table.drop(columns="Drop%"))


@pytest.mark.parametrize("methods,message", [([], "non-empty"), ("saliency", "non-empty"),
                                             ([("x", 3)], "neither")])
def test_bad_methods_raise(tiny, methods, message):
    model, dataset = tiny
    with pytest.raises(ValueError, match=message):
        ev.evaluate(model, dataset, methods, progress=False)


def test_command_line_on_a_tiny_n(tiny, tmp_path, monkeypatch):
    model, dataset = tiny
    import course_utils.models
    monkeypatch.setattr(course_utils.models, "load_pretrained", lambda name, device=None: model)
    monkeypatch.setattr(ev, "_load_dataset", lambda name, root, size: dataset)
    table = ev.main(["mnist1d", "--methods", "saliency", "--n", "4", "--out", str(tmp_path), "--no-progress"])
    assert table["n"].tolist() == [4]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "mnist1d_evaluation.csv"), table, check_dtype=False)
    assert (tmp_path / "mnist1d_evaluation.png").stat().st_size > 0


def shipped_mnist1d():
    from course_utils.data import mnist1d
    from course_utils.models import load_pretrained
    return load_pretrained("mnist1d", device="cpu"), mnist1d("test", root=REPO / "data")  # the CLI's cache


def test_command_line_subprocess_on_the_shipped_model(tmp_path):
    shipped_mnist1d()
    subprocess.run([sys.executable, "-m", "course_utils.evaluate", "mnist1d", "--methods", "saliency",
                    "--n", "8", "--out", str(tmp_path)], cwd=REPO, check=True, capture_output=True)
    table = pd.read_csv(tmp_path / "mnist1d_evaluation.csv")
    assert table["method"].tolist() == ["saliency"] and table["n"].tolist() == [8]


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_a_sane_explainer_beats_random_maps_on_the_shipped_model(method):
    model, data = shipped_mnist1d()
    x = data.x[:200]
    ours = drop_increase(model, x, ev.build_explainer(method, model, seed=0).explain(x), keep=0.3)
    noise = torch.rand(200, 40, generator=torch.Generator().manual_seed(0))
    random = drop_increase(model, x, noise, keep=0.3)
    assert ours.drop < random.drop, (ours.drop, random.drop)


def test_metric_intervals_are_centred_on_the_table_values(tiny):
    model, dataset = tiny
    x = dataset.x
    target = model(x).argmax(1)
    maps = {"gradient": InputGradient(model).explain(x, target), "ramp": torch.arange(40.0).expand(12, 40)}
    table = ev.metric_intervals(model, x, maps, target, keep=0.3)
    assert list(table.index) == ["gradient", "ramp"]
    assert list(table.columns.levels[0]) == ["Drop%", "Increase%", "deletion AUC", "insertion AUC"]
    for label, m in maps.items():
        scores = drop_increase(model, x, m, target, keep=0.3)
        expected = [scores.drop, scores.increase, insertion(model, x, m, target).mean_auc,
                    deletion(model, x, m, target).mean_auc]
        for column, value in zip(["Drop%", "Increase%", "insertion AUC", "deletion AUC"], expected):
            row = table.loc[label, column]
            assert row["mean"] == pytest.approx(value, rel=1e-6, abs=1e-6)  # the table averages in float32
            assert row["low"] <= row["mean"] <= row["high"]


def test_evaluate_takes_maps_already_computed_and_returns_the_per_sample_scores(tiny):
    model, dataset = tiny
    maps = InputGradient(model).explain(dataset.x)
    built = ev.evaluate(model, dataset, [("grad", InputGradient(model))], n=7, seed=3, progress=False)
    given, scores = ev.evaluate(model, dataset, [("grad", maps)], n=7, seed=3, progress=False, return_scores=True)
    columns = ["method", "n", *ev.METRICS[:-1]]
    pd.testing.assert_frame_equal(given[columns], built[columns])
    assert given["seconds per sample"].isna().all()
    assert set(scores) == {"grad"} and set(scores["grad"]) == set(ev.METRICS[:-1])
    for column, values in scores["grad"].items():
        assert values.shape == (7,)
        assert values.mean().item() == given.iloc[0][column]
    with pytest.raises(ValueError, match="one map per sample"):
        ev.evaluate(model, dataset, [("grad", maps[:7])], n=7, seed=3, progress=False)


def test_the_clean_inputs_are_scored_once_per_table(tiny):
    model, dataset = tiny
    seen = []
    handle = model.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    try:
        maps = torch.rand(12, 40, generator=torch.Generator().manual_seed(4))
        ev.evaluate(model, dataset, [("a", maps), ("b", maps.flip(1))], batch_size=12, progress=False)
    finally:
        handle.remove()
    assert sum(torch.equal(batch, dataset.x) for batch in seen) == 1
