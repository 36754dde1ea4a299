"""Download of the HMT tiles (Kather et al. 2016, Sci. Rep. 6, 27988) from Zenodo record 53169, hash-checked.

The pinned SHA-256 is the one tensorflow-datasets records for its ``colorectal_histology`` dataset
(``tensorflow_datasets/url_checksums/colorectal_histology.txt``; 258,098,431 bytes).
Data licence: CC BY 4.0 — credit the authors.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pooch
import requests

from course_utils.core.files import NotOurFileError, user_permissions
from course_utils.core.paths import data_home

ZENODO_RECORD = "https://zenodo.org/record/53169"
ZENODO_URL = f"{ZENODO_RECORD}/files/Kather_texture_2016_image_tiles_5000.zip"
ZENODO_SHA256 = "936d0b95ae0f04f1f7b18a2b7e8c55776c3e887d102f645bcee752d1a6626a32"
ZIP_NAME = "Kather_texture_2016_image_tiles_5000.zip"


class CorruptDownloadError(OSError):
    """The downloaded file does not have the expected SHA-256."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_hmt(dest: str | os.PathLike | None = None, url: str = ZENODO_URL, sha256: str = ZENODO_SHA256,
                 progress: bool = True) -> Path:
    """Download ``Kather_texture_2016_image_tiles_5000.zip`` (258 MB) into ``dest`` (default: the data home,
    :func:`course_utils.core.paths.data_home`); return its path.

    Nothing is downloaded when the file is already there with the right SHA-256; a file of that name with another
    hash is not the kit's and is left alone (:class:`~course_utils.core.files.NotOurFileError`). The download goes
    to a temporary file that is only renamed once its hash matches, so a failed or corrupt download leaves no
    file behind (:class:`CorruptDownloadError`); the zip gets the user's normal file permissions.
    """
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    target = data_home(dest).resolve() / ZIP_NAME
    by_hand = (f"download {ZIP_NAME} by hand from {ZENODO_RECORD} and put it at {target} (its SHA-256 must be "
               f"{sha256}).")
    if target.exists():
        if target.is_file() and _sha256(target) == sha256.lower():
            return target
        raise NotOurFileError(f"{target} already exists but is not the Zenodo file (its SHA-256 is not {sha256}), "
                              f"so it is left as it is. If it is a broken download, delete it and run download_hmt "
                              f"again, or {by_hand}")
    try:
        path = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=ZIP_NAME, path=target.parent,
                              progressbar=progress)
    except ValueError as err:
        raise CorruptDownloadError(
            f"The download of {url} is corrupt: {err} The file was removed. Retry with download_hmt("
            f"{None if dest is None else str(dest)!r}) (a dropped connection or a proxy can damage a download), or "
            f"{by_hand}") from err
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"Could not download {url}: {err}. Check the connection and retry, or {by_hand}") \
            from err
    user_permissions(path)
    return Path(path)
