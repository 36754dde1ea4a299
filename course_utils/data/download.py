"""Download of the HMT tiles (Kather et al. 2016, Sci. Rep. 6, 27988) from Zenodo record 53169, hash-checked.

The pinned SHA-256 is the one tensorflow-datasets records for its ``colorectal_histology`` dataset
(``tensorflow_datasets/url_checksums/colorectal_histology.txt``; 258,098,431 bytes).
Data licence: CC BY 4.0 — credit the authors.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pooch
import requests

ZENODO_RECORD = "https://zenodo.org/record/53169"
ZENODO_URL = f"{ZENODO_RECORD}/files/Kather_texture_2016_image_tiles_5000.zip"
ZENODO_SHA256 = "936d0b95ae0f04f1f7b18a2b7e8c55776c3e887d102f645bcee752d1a6626a32"
ZIP_NAME = "Kather_texture_2016_image_tiles_5000.zip"


class CorruptDownloadError(OSError):
    """The downloaded file does not have the expected SHA-256."""


def download_hmt(dest: str | os.PathLike = "data", url: str = ZENODO_URL, sha256: str = ZENODO_SHA256,
                 progress: bool = True) -> Path:
    """Download ``Kather_texture_2016_image_tiles_5000.zip`` (258 MB) into ``dest``; return its path.

    Nothing is downloaded when the file is already there with the right SHA-256; a file with another hash is
    replaced. The download goes to a temporary file that is only renamed once its hash matches, so a failed or
    corrupt download leaves no file behind (:class:`CorruptDownloadError`).
    """
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    target = Path(dest).resolve() / ZIP_NAME
    by_hand = (f"download {ZIP_NAME} by hand from {ZENODO_RECORD} and put it at {target} (its SHA-256 must be "
               f"{sha256}).")
    try:
        path = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=ZIP_NAME, path=target.parent,
                              progressbar=progress)
    except ValueError as err:
        target.unlink(missing_ok=True)
        raise CorruptDownloadError(
            f"The download of {url} is corrupt: {err} The file was removed. Retry with download_hmt({str(dest)!r}) "
            f"(a dropped connection or a proxy can damage a download), or {by_hand}") from err
    except requests.exceptions.RequestException as err:
        raise ConnectionError(f"Could not download {url}: {err}. Check the connection and retry, or {by_hand}") \
            from err
    return Path(path)
