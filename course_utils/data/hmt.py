"""HMT: the colorectal histology texture tiles of Kather et al. 2016, in the ECE1512 course split.

Kather, Weis, Bianconi et al., "Multi-class texture analysis in colorectal cancer histology", Sci. Rep. 6,
27988 (2016); data: Zenodo record 53169, ``Kather_texture_2016_image_tiles_5000.zip``, licence CC BY 4.0.
5000 RGB tiles of 150×150 px, 8 classes of 625. The course split keeps 563 per class for training (4504)
and 62 per class for testing (496); the test tiles are listed in ``hmt_test_files.txt`` beside this module.

Accepted sources (``root``): the Zenodo zip, its extracted folder (flat class folders, the split applied from
the list), a course-layout folder (``HMT_train/`` + ``HMT_test/`` or ``train/`` + ``test/``, each with class
folders), with TIFF or WebP tiles.
"""
from __future__ import annotations

import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from course_utils.core.paths import SOURCE_ROOT, data_home

HMT_CLASSES = ["01_TUMOR", "02_STROMA", "03_COMPLEX", "04_LYMPHO", "05_DEBRIS", "06_MUCOSA", "07_ADIPOSE",
               "08_EMPTY"]
ZIP_NAME = "Kather_texture_2016_image_tiles_5000.zip"
FOLDER_NAME = "Kather_texture_2016_image_tiles_5000"
DEFAULT_IMAGE_SIZE = 64
TILE_SIZE = 150
_SPLITS = ("train", "test")
_SUFFIXES = (".tif", ".tiff", ".webp", ".png")
HMT_DIR_VARIABLE = "COURSE_HMT_DIR"

HOW_TO_GET = (
    "Run course_utils.data.download_hmt() to download Kather_texture_2016_image_tiles_5000.zip (Kather et al. "
    "2016, CC BY 4.0, 258 MB) from https://zenodo.org/record/53169 into the data home, or download it by hand and "
    "put the zip or its extracted folder in the data home (or anywhere, then pass root=... or set COURSE_HMT_DIR)."
)


def _test_files() -> set[str]:
    """``class/stem`` of the 496 course test tiles."""
    lines = (Path(__file__).with_name("hmt_test_files.txt")).read_text().splitlines()
    return {line.rsplit(".", 1)[0] for line in lines if line and not line.startswith("#")}


def _candidates(root: str | os.PathLike | None) -> list[Path]:
    """Where HMT may be: ``root`` alone if given; else ``$COURSE_HMT_DIR``, the data home's ``hmt/``, Zenodo
    folder or zip, and in a source checkout the course's shared data beside the repository."""
    if root is not None:
        return [Path(root).expanduser()]
    out = [Path(os.environ[HMT_DIR_VARIABLE]).expanduser()] if os.environ.get(HMT_DIR_VARIABLE) else []
    home = data_home()
    out += [home / name for name in ("hmt", FOLDER_NAME, ZIP_NAME)]
    if SOURCE_ROOT is not None:
        out.append(SOURCE_ROOT.parent / "shared" / "data" / "hmt")
    return out


def find_hmt(root: str | os.PathLike | None = None) -> Path:
    """Where the HMT tiles are: ``root`` if given, else ``$COURSE_HMT_DIR``, then ``hmt/``,
    ``Kather_texture_2016_image_tiles_5000/`` or the Zenodo zip in the data home
    (:func:`course_utils.core.paths.data_home`), and in a source checkout ``../shared/data/hmt`` beside it.

    Raises ``FileNotFoundError`` listing the places searched and how to get the data.
    """
    tried = _candidates(root)
    for path in tried:
        if path.is_file() and zipfile.is_zipfile(path) or path.is_dir():
            return path
    raise FileNotFoundError(f"HMT tiles not found; looked in: {', '.join(map(str, tried))}. {HOW_TO_GET}")


def _class_dirs(folder: Path) -> dict[str, Path] | None:
    dirs = {c: folder / c for c in HMT_CLASSES}
    return dirs if all(d.is_dir() for d in dirs.values()) else None


def _tiles_in(folder: Path) -> list[tuple[str, Path]]:
    return sorted((p.parent.name, p) for c, d in _class_dirs(folder).items() for p in d.iterdir()
                  if p.suffix.lower() in _SUFFIXES)


def _list_folder(root: Path, split: str) -> list[tuple[str, Path]]:
    """``(class, path)`` of every tile of ``split`` in a course-layout or flat folder."""
    for train, test in (("HMT_train", "HMT_test"), ("train", "test")):
        if _class_dirs(root / train) and _class_dirs(root / test):
            return _tiles_in(root / (train if split == "train" else test))
    for flat in (root, root / FOLDER_NAME):
        if _class_dirs(flat):
            test = _test_files()
            return [(c, p) for c, p in _tiles_in(flat) if (f"{c}/{p.stem}" in test) == (split == "test")]
    raise FileNotFoundError(
        f"{root} holds no HMT class folders ({', '.join(HMT_CLASSES)}) in a known layout: expected the Zenodo "
        f"folder {FOLDER_NAME}/, or HMT_train/ + HMT_test/, or train/ + test/. {HOW_TO_GET}")


def _list_zip(archive: zipfile.ZipFile, split: str) -> list[tuple[str, str]]:
    test = _test_files()
    out = []
    for name in archive.namelist():
        parts = name.split("/")
        if len(parts) < 2 or parts[-2] not in HMT_CLASSES or not parts[-1].lower().endswith(_SUFFIXES):
            continue
        cls, stem = parts[-2], parts[-1].rsplit(".", 1)[0]
        if (f"{cls}/{stem}" in test) == (split == "test"):
            out.append((cls, name))
    if not out:
        raise FileNotFoundError(f"{archive.filename} holds no HMT tiles of the {split} split. {HOW_TO_GET}")
    return sorted(out)


def _decode(data: bytes | Path, name: str, image_size: int | None) -> np.ndarray:
    """Decode one tile to an ``(S, S, 3)`` uint8 array; a damaged file raises an error naming it."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            im = im.convert("RGB")
            if image_size is not None and im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"corrupt HMT tile {name}: {err}. Replace the file (re-extract or re-download the "
                         f"Zenodo zip).") from err


class HMTDataset(Dataset):
    """In-memory HMT split: ``x`` (N, 3, S, S) float32 in [0, 1], ``y`` (N,) int64, ``files`` (N names)."""

    classes = HMT_CLASSES

    def __init__(self, x: torch.Tensor, y: torch.Tensor, files: list[str]):
        self.x, self.y, self.files = x, y, files

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def hmt(root: str | os.PathLike | None = None, split: str = "test",
        image_size: int | None = DEFAULT_IMAGE_SIZE, workers: int = 4) -> HMTDataset:
    """Load the ``"train"`` (4504) or ``"test"`` (496) course split of HMT into memory.

    ``image_size``: tiles are resized (bilinear, antialiased) to ``image_size``² pixels; ``None`` keeps the
    original 150×150. Labels follow ``HMT_CLASSES`` (01_TUMOR = 0 … 08_EMPTY = 7). ``root``: see
    :func:`find_hmt`.
    """
    if split not in _SPLITS:
        raise ValueError(f"split={split!r}; choose 'train' or 'test'.")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
        raise ValueError(f"image_size={image_size!r}; pass an int ≥ 8 (e.g. 64) or None for the 150 px tiles.")
    source = find_hmt(root)
    if source.is_file():
        with zipfile.ZipFile(source) as archive:
            entries = _list_zip(archive, split)
            blobs = [(archive.read(name), name) for _, name in entries]
        labels = [c for c, _ in entries]
    else:
        entries = _list_folder(source, split)
        blobs = [(path, str(path)) for _, path in entries]
        labels = [c for c, _ in entries]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        arrays = list(pool.map(lambda b: _decode(b[0], b[1], image_size), blobs))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    y = torch.tensor([HMT_CLASSES.index(c) for c in labels], dtype=torch.int64)
    return HMTDataset(x, y, [name for _, name in blobs])
