"""MNIST-1D generator and dataset, checked against the official frozen set and the official ``mnist1d`` package."""
import importlib
import os
import pickle
import random
import shutil
import stat

import mnist1d.data as official_mnist1d
import numpy as np
import pytest
import torch
from mnist1d.utils import ObjectView

from course_utils.data import MNIST1DDataset, make_mnist1d, mnist1d, two_digit_composites

mnist1d_module = importlib.import_module("course_utils.data.mnist1d")
OFFICIAL_KEYS = ("x", "x_test", "y", "y_test", "t")
NOISE_FREE = {"corr_noise_scale": 0.0, "iid_noise_scale": 0.0, "shear_scale": 0.0}


def official_dataset(**overrides) -> dict:
    """The official generator's output (test oracle), leaving the global RNG states as they were."""
    args = official_mnist1d.get_dataset_args(as_dict=True)
    args.update(overrides)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return official_mnist1d.make_dataset(ObjectView(args))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def assert_same_dataset(ours: dict, reference: dict) -> None:
    for key in ("x", "x_test", "t"):
        assert ours[key].shape == reference[key].shape, key
        np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-12, err_msg=key)
    for key in ("y", "y_test"):
        assert ours[key].dtype == np.int64
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
    for key in ("x", "t", "y"):
        np.testing.assert_allclose(ours["templates"][key], reference["templates"][key], rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def ours() -> dict:
    return make_mnist1d()


def test_default_arguments_are_the_official_ones():
    official = official_mnist1d.get_dataset_args(as_dict=True)
    official.pop("url")
    ours = dict(mnist1d_module.DEFAULT_ARGS, padding=list(mnist1d_module.DEFAULT_ARGS["padding"]))
    assert ours == official


def test_matches_the_official_frozen_set(ours, shared_data):
    with open(shared_data / "mnist1d" / "mnist1d_data.pkl", "rb") as handle:
        frozen = pickle.load(handle)
    assert set(frozen) | {"positions", "positions_test"} == set(ours)
    assert (len(ours["x"]), len(ours["x_test"])) == (4000, 1000)
    assert_same_dataset(ours, frozen)


@pytest.mark.parametrize("overrides", [
    {},
    {"seed": 7, "num_samples": 600, "shuffle_seq": True, "padding": [20, 40], "corr_noise_scale": 0.1,
     "max_translation": 30, "train_split": 0.5},
])
def test_matches_the_official_package(overrides, ours):
    generated = ours if not overrides else make_mnist1d(**overrides)
    assert_same_dataset(generated, official_dataset(**overrides))


def test_overrides_change_the_data_and_same_seed_repeats():
    state = np.random.get_state()
    small = make_mnist1d(num_samples=600)
    assert small["x"].shape == (480, 40) and small["x_test"].shape == (120, 40)
    assert np.bincount(np.concatenate([small["y"], small["y_test"]])).tolist() == [60] * 10
    np.testing.assert_array_equal(make_mnist1d(num_samples=600)["x"], small["x"])
    assert not np.allclose(make_mnist1d(num_samples=600, seed=1)["x"], small["x"])
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), state)), "global RNG was touched"


def test_unknown_argument_raises():
    with pytest.raises(ValueError, match="num_samples"):
        make_mnist1d(n_samples=100)


@pytest.mark.parametrize("split", ["", "_test"])
def test_positions_are_one_contiguous_span(ours, split):
    positions = ours["positions" + split]
    assert positions.dtype == bool and positions.shape == ours["x" + split].shape
    for row in positions:
        where = np.flatnonzero(row)
        assert 0 < len(where) < row.size
        assert where[-1] - where[0] + 1 == len(where)


def test_positions_are_the_support_of_the_noise_free_signal(ours):
    noise_free = make_mnist1d(**NOISE_FREE)
    for split in ("", "_test"):
        positions, x = noise_free["positions" + split], noise_free["x" + split]
        np.testing.assert_array_equal(positions, ours["positions" + split])
        background = x[~positions]
        assert np.ptp(background) <= 1e-12
        assert np.all(x[positions] != background[0])


def test_positions_match_the_official_noise_free_signal():
    reference = official_dataset(num_samples=1000, **NOISE_FREE)
    x = np.concatenate([reference["x"], reference["x_test"]])
    values, counts = np.unique(x, return_counts=True)
    background = values[counts.argmax()]
    ours = make_mnist1d(num_samples=1000)
    np.testing.assert_array_equal(x != background, np.concatenate([ours["positions"], ours["positions_test"]]))


def test_dataset_splits(tmp_path, ours):
    train, test = mnist1d("train", root=tmp_path), mnist1d("test", root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [mnist1d_module.CACHE_NAME]
    for dataset, split, count in ((train, "", 4000), (test, "_test", 1000)):
        assert isinstance(dataset, MNIST1DDataset) and len(dataset) == count
        assert dataset.x.shape == (count, 1, 40) and dataset.x.dtype == torch.float32
        assert dataset.y.shape == (count,) and dataset.y.dtype == torch.int64
        assert dataset.positions.shape == (count, 40) and dataset.positions.dtype == torch.bool
        assert len(dataset.classes) == 10
        torch.testing.assert_close(dataset.x[:, 0], torch.from_numpy(ours["x" + split]).float())
        assert torch.equal(dataset.y, torch.from_numpy(ours["y" + split]))
        assert torch.equal(dataset.positions, torch.from_numpy(ours["positions" + split]))
        x_0, y_0 = dataset[0]
        assert torch.equal(x_0, dataset.x[0]) and y_0 == dataset.y[0]


def test_cache_is_reused_and_never_replaced_when_foreign(tmp_path, monkeypatch, ours):
    cache = tmp_path / mnist1d_module.CACHE_NAME
    expected = mnist1d("test", root=tmp_path)

    def no_generation(**_):
        raise AssertionError("regenerated although the cache was valid")

    with monkeypatch.context() as patch:
        patch.setattr(mnist1d_module, "make_mnist1d", no_generation)
        assert torch.equal(mnist1d("test", root=tmp_path).x, expected.x)

    official_keys_only = pickle.dumps({key: ours[key] for key in OFFICIAL_KEYS})
    for foreign in (b"not a pickle", official_keys_only):
        cache.write_bytes(foreign)
        with pytest.raises(ValueError, match="not an MNIST-1D cache written by course_utils.*Delete it"):
            mnist1d("test", root=tmp_path)
        assert cache.read_bytes() == foreign, "a file the kit did not write is left as it is"
    cache.unlink()
    regenerated = mnist1d("test", root=tmp_path)
    assert torch.equal(regenerated.x, expected.x) and torch.equal(regenerated.positions, expected.positions)
    with open(cache, "rb") as handle:
        assert "positions_test" in pickle.load(handle)


def test_cache_has_the_users_permissions_and_no_leftovers(tmp_path):
    old = os.umask(0o027)
    try:
        mnist1d("test", root=tmp_path)
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == [mnist1d_module.CACHE_NAME], "no temporary file is left"
    assert stat.S_IMODE((tmp_path / mnist1d_module.CACHE_NAME).stat().st_mode) == 0o640


def test_the_official_frozen_file_is_read_as_it_is(tmp_path, shared_data, monkeypatch):
    users, home = tmp_path / "users", tmp_path / "home"
    users.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(home))
    official = users / "mnist1d_data.pkl"
    shutil.copyfile(shared_data / "mnist1d" / "mnist1d_data.pkl", official)
    official.chmod(0o444)
    before = (official.read_bytes(), official.stat().st_mode, official.stat().st_mtime_ns)
    with open(official, "rb") as handle:
        frozen = pickle.load(handle)
    test = mnist1d("test", root=users)
    assert (official.read_bytes(), official.stat().st_mode, official.stat().st_mtime_ns) == before
    assert [p.name for p in users.iterdir()] == ["mnist1d_data.pkl"], "nothing is written beside the user's file"
    assert (home / mnist1d_module.CACHE_NAME).is_file(), "the positions live in the kit's own file in the data home"
    assert torch.equal(test.x[:, 0], torch.as_tensor(frozen["x_test"], dtype=torch.float32))
    assert torch.equal(test.y, torch.as_tensor(frozen["y_test"]))
    assert test.positions.any(1).all()


def test_a_different_file_under_the_official_name_raises(tmp_path, ours, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "home"))
    official = tmp_path / "mnist1d_data.pkl"
    other = {key: ours[key] for key in OFFICIAL_KEYS}
    other["x_test"] = other["x_test"][::-1].copy()
    official.write_bytes(pickle.dumps(other))
    with pytest.raises(ValueError, match="not the official frozen MNIST-1D set"):
        mnist1d("test", root=tmp_path)
    official.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="could not be read as the official MNIST-1D set"):
        mnist1d("test", root=tmp_path)
    assert official.read_bytes() == b"garbage"


def test_the_data_home_is_the_default_root_wherever_python_runs(tmp_path, monkeypatch):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(home))
    monkeypatch.chdir(elsewhere)
    mnist1d("test")
    assert (home / mnist1d_module.CACHE_NAME).is_file() and not any(elsewhere.iterdir())


def test_bad_split_raises(tmp_path):
    with pytest.raises(ValueError, match="'train', 'test'"):
        mnist1d("validation", root=tmp_path)


def test_two_digit_composites_place_both_templates_apart():
    torch.manual_seed(0)
    positions = torch.zeros(6, 40, dtype=torch.bool)
    for k, (start, stop) in enumerate([(3, 12), (20, 28), (10, 21), (0, 7), (30, 40), (15, 24)]):
        positions[k, start:stop] = True
    x = torch.randn(6, 1, 40)
    data = MNIST1DDataset(x.numpy()[:, 0], np.arange(6), positions.numpy())
    comp = two_digit_composites(data, 5, seed=1)
    assert comp.x.shape == (5, 1, 40) and comp.y.shape == (5, 2) and comp.positions.shape == (5, 2, 40)
    assert (comp.y[:, 0] != comp.y[:, 1]).all()
    for k in range(5):
        left, right = comp.positions[k]
        a, b = comp.y[k].tolist()
        assert left.sum() == positions[a].sum() and right.sum() == positions[b].sum()
        assert torch.nonzero(left)[0].item() == 1 and torch.nonzero(right)[-1].item() == 38   # margin 1
        assert torch.nonzero(right)[0].item() > torch.nonzero(left)[-1].item() + 1          # apart
        # each template's values are its source signal's template values, in order
        assert torch.equal(comp.x[k, 0][left], x[a, 0][positions[a]])
        assert torch.equal(comp.x[k, 0][right], x[b, 0][positions[b]])
    assert torch.equal(two_digit_composites(data, 5, seed=1).x, comp.x)
