"""The trainer: seeded and deterministic, augmentation is exactly the 8 symmetries of a square."""
import subprocess
import sys

import pytest
import torch

from course_utils.models import ShallowCNN1D, load_checkpoint
from course_utils.train import TrainConfig, dihedral_augment, fit


def _toy(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (200,), generator=g)
    x = torch.randn(200, 1, 40, generator=g) * 0.3 + y[:, None, None].float() / 5
    return x, y


def _train(seed):
    x, y = _toy()
    torch.manual_seed(seed)
    model = ShallowCNN1D(channels=8)
    history = fit(model, x, y, TrainConfig(epochs=3, lr=1e-2, batch_size=50, seed=seed), "cpu", progress=False)
    return model, history


def test_same_seed_same_weights_and_history():
    (a, ha), (b, hb) = _train(0), _train(0)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    assert ha.train_loss == hb.train_loss and len(ha.val_accuracy) == 3
    c, _ = _train(1)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert not a.training


def test_training_learns_the_toy_problem():
    x, y = _toy()
    torch.manual_seed(0)
    model = ShallowCNN1D(channels=16)
    history = fit(model, x, y, TrainConfig(epochs=30, lr=1e-2, batch_size=50, val_fraction=0.0), "cpu", False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_bad_validation_fraction_is_refused(fraction):
    x, y = _toy()
    with pytest.raises(ValueError, match="val_fraction"):
        fit(ShallowCNN1D(channels=8), x, y, TrainConfig(epochs=1, lr=1e-2, batch_size=50, val_fraction=fraction))


def test_dihedral_augment_gives_the_eight_symmetries():
    base = torch.arange(16.0).view(1, 1, 4, 4)
    x = base.expand(400, 3, 4, 4).clone()
    out = dihedral_augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 0], out[:, 2])
    variants = {tuple(o[0].flatten().tolist()) for o in out}
    expected = set()
    for k in range(4):
        for img in (base[0, 0], base[0, 0].flip(-1)):
            expected.add(tuple(torch.rot90(img, k).flatten().tolist()))
    assert variants == expected and len(expected) == 8


def test_cli_trains_and_saves_a_checkpoint(tmp_path):
    out = tmp_path / "m.pt"
    proc = subprocess.run([sys.executable, "-m", "course_utils.train", "mnist1d", "--epochs", "1", "--out", str(out),
                           "--val-fraction", "0.2", "--data", str(tmp_path), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    model, meta = load_checkpoint(out)
    assert meta["config"]["epochs"] == 1 and meta["dataset"] == "mnist1d" and meta["n_test"] == 1000
    assert meta["config"]["val_fraction"] == 0.2 and len(meta["val_accuracy"]) == 1
