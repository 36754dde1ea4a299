"""HMT loader: the course split, labels and pixels checked against ../shared/data/hmt/manifest.csv."""
import csv
import hashlib
import importlib
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data import HMT_CLASSES, find_hmt, hmt

hmt_module = importlib.import_module("course_utils.data.hmt")
from course_utils.data.hmt import FOLDER_NAME, ZIP_NAME


@pytest.fixture(scope="module")
def manifest(shared_hmt):
    with open(shared_hmt / "manifest.csv") as f:
        return list(csv.DictReader(f))


def _sha(x: torch.Tensor) -> str:
    """sha256 of one (3, H, W) [0, 1] image as the manifest defines it: H×W×3 uint8 bytes."""
    arr = (x.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


@pytest.mark.parametrize("split,per_class", [("train", 563), ("test", 62)])
def test_course_split_counts_labels_and_pixels(shared_hmt, manifest, split, per_class):
    data = hmt(shared_hmt, split, image_size=None)
    assert data.x.shape == (8 * per_class, 3, 150, 150) and data.x.dtype == torch.float32
    assert data.y.bincount().tolist() == [per_class] * 8
    expected = {(r["class"], r["file"]): r["pixel_sha256"] for r in manifest if r["split"] == split}
    got = {}
    for x, y, f in zip(data.x, data.y, data.files):
        name = f.replace("\\", "/").rsplit("/", 1)[-1]
        got[(HMT_CLASSES[int(y)], name)] = _sha(x)
    assert got == expected


def test_resized_tiles_are_in_unit_range(shared_hmt):
    data = hmt(shared_hmt, "test", image_size=32)
    assert data.x.shape == (496, 3, 32, 32)
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    x, y = data[5]
    assert x.shape == (3, 32, 32) and int(y) == int(data.y[5])


def _zenodo_zip(shared_hmt, manifest, path, per_split=2):
    """A small zip laid out like the Zenodo one (flat class folders of .tif), from real tiles."""
    chosen = []
    with zipfile.ZipFile(path, "w") as zf:
        for cls in HMT_CLASSES:
            for split in ("train", "test"):
                rows = [r for r in manifest if r["class"] == cls and r["split"] == split][:per_split]
                for r in rows:
                    buf = io.BytesIO()
                    Image.open(shared_hmt / split / cls / r["file"]).save(buf, format="TIFF", compression="packbits")
                    zf.writestr(f"{FOLDER_NAME}/{cls}/{r['original_filename']}", buf.getvalue())
                    chosen.append(r)
    return chosen


def test_zenodo_zip_and_folder_reproduce_the_split(shared_hmt, manifest, tmp_path):
    chosen = _zenodo_zip(shared_hmt, manifest, tmp_path / ZIP_NAME)
    extracted = tmp_path / "extracted"
    zipfile.ZipFile(tmp_path / ZIP_NAME).extractall(extracted)
    for source in (tmp_path / ZIP_NAME, extracted, extracted / FOLDER_NAME):
        for split in ("train", "test"):
            data = hmt(source, split, image_size=None)
            want = {(r["class"], r["pixel_sha256"]) for r in chosen if r["split"] == split}
            assert {(HMT_CLASSES[int(y)], _sha(x)) for x, y in zip(data.x, data.y)} == want


def test_original_tiffs_read(shared_hmt, manifest, tmp_path):
    sample = shared_hmt / "tif_sample"
    assert sample.is_dir(), f"the shared HMT data lacks {sample}"
    data = hmt(sample, "test", image_size=None)
    by_name = {r["original_filename"]: r["pixel_sha256"] for r in manifest}
    assert len(data) > 0
    for x, f in zip(data.x, data.files):
        assert _sha(x) == by_name[f.replace("\\", "/").rsplit("/", 1)[-1]]


def test_missing_data_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="zenodo.org/record/53169"):
        find_hmt(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="HMT_train"):
        hmt(tmp_path, "test")


def test_find_hmt_searches_the_data_home_the_variable_and_the_shared_data(tmp_path, monkeypatch):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (elsewhere / "data" / "hmt").mkdir(parents=True)
    monkeypatch.setenv("COURSE_DATA_DIR", str(home))
    monkeypatch.setenv("COURSE_HMT_DIR", str(tmp_path / "named"))
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(hmt_module, "SOURCE_ROOT", None)
    with pytest.raises(FileNotFoundError) as error:
        find_hmt()
    searched = str(error.value).split("looked in: ")[1].split(". ")[0].split(", ")
    assert searched == [str(tmp_path / "named"), str(home / "hmt"), str(home / hmt_module.FOLDER_NAME),
                        str(home / hmt_module.ZIP_NAME)], "nothing relative to the working folder or the package"
    assert "download_hmt()" in str(error.value)
    (home / "hmt").mkdir(parents=True)
    assert find_hmt() == home / "hmt"
    monkeypatch.setattr(hmt_module, "SOURCE_ROOT", tmp_path / "repo")
    monkeypatch.delenv("COURSE_HMT_DIR")
    (home / "hmt").rmdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "shared" / "data" / "hmt")):
        find_hmt()


def test_corrupt_tile_error_names_the_file(shared_hmt, manifest, tmp_path):
    for split in ("train", "test"):
        for cls in HMT_CLASSES:
            (tmp_path / split / cls).mkdir(parents=True)
            r = next(r for r in manifest if r["class"] == cls and r["split"] == split)
            (tmp_path / split / cls / r["file"]).write_bytes((shared_hmt / split / cls / r["file"]).read_bytes())
    bad = tmp_path / "test" / "03_COMPLEX" / "broken.webp"
    bad.write_bytes(b"not an image")
    assert len(hmt(tmp_path, "train", image_size=None)) == 8
    with pytest.raises(ValueError, match="broken.webp"):
        hmt(tmp_path, "test")


def test_bad_arguments(shared_hmt):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        hmt(shared_hmt, "validation")
    with pytest.raises(ValueError, match="image_size"):
        hmt(shared_hmt, "test", image_size=0)
