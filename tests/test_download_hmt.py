"""download_hmt against a local HTTP server that serves a small zip laid out like the Zenodo one."""
import csv
import hashlib
import http.server
import io
import os
import stat
import threading
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from course_utils.core.files import NotOurFileError
from course_utils.data import download_hmt, find_hmt
from course_utils.data.download import ZIP_NAME, CorruptDownloadError

ZIP_PATH = "/files/" + ZIP_NAME


@pytest.fixture(scope="module")
def small_zip(shared_hmt) -> SimpleNamespace:
    """Three 01_TUMOR tiles, converted back from lossless WebP to TIFF, under the Zenodo zip's folder layout."""
    hmt = shared_hmt
    with open(hmt / "manifest.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["class"] == "01_TUMOR"][:3]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for row in rows:
            pixels = np.asarray(Image.open(hmt / row["split"] / row["class"] / row["file"]).convert("RGB"))
            assert hashlib.sha256(pixels.tobytes()).hexdigest() == row["pixel_sha256"]
            tiff = io.BytesIO()
            Image.fromarray(pixels).save(tiff, format="TIFF", compression="packbits")
            archive.writestr(f"Kather_texture_2016_image_tiles_5000/01_TUMOR/{row['original_filename']}",
                             tiff.getvalue())
    data = buffer.getvalue()
    names = [f"Kather_texture_2016_image_tiles_5000/01_TUMOR/{row['original_filename']}" for row in rows]
    return SimpleNamespace(data=data, sha256=hashlib.sha256(data).hexdigest(), names=names)


@pytest.fixture
def server(monkeypatch) -> SimpleNamespace:
    """HTTP server on 127.0.0.1 (ephemeral port) serving ``files`` (path → bytes) and logging each GET."""
    files, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}", files=files, hits=hits)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_downloads_once_with_the_right_hash(small_zip, server, tmp_path):
    server.files[ZIP_PATH] = small_zip.data
    dest = tmp_path / "data"
    path = download_hmt(dest, url=server.url + ZIP_PATH, sha256=small_zip.sha256, progress=True)
    assert path == (dest / ZIP_NAME).resolve()
    assert path.read_bytes() == small_zip.data
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == small_zip.names
        assert Image.open(io.BytesIO(archive.read(small_zip.names[0]))).size == (150, 150)
    assert server.hits == [ZIP_PATH]

    assert download_hmt(dest, url=server.url + ZIP_PATH, sha256=small_zip.sha256, progress=False) == path
    assert server.hits == [ZIP_PATH]


@pytest.mark.parametrize("damage", ["served bytes altered", "pinned hash differs"])
def test_corrupt_download_raises_and_leaves_nothing(small_zip, server, tmp_path, damage):
    served, pinned = small_zip.data, small_zip.sha256
    if damage == "served bytes altered":
        served = served[:100] + bytes([served[100] ^ 0xFF]) + served[101:]
    else:
        pinned = hashlib.sha256(b"another file").hexdigest()
    server.files[ZIP_PATH] = served
    dest = tmp_path / "data"
    with pytest.raises(CorruptDownloadError) as error:
        download_hmt(dest, url=server.url + ZIP_PATH, sha256=pinned, progress=False)
    message = str(error.value)
    for expected in ("corrupt", "was removed", "Retry with download_hmt", "https://zenodo.org/record/53169", pinned):
        assert expected in message
    assert not dest.exists() or list(dest.iterdir()) == []


def test_existing_file_with_another_hash_is_left_alone(small_zip, server, tmp_path):
    server.files[ZIP_PATH] = small_zip.data
    (tmp_path / ZIP_NAME).write_bytes(b"the user's own file")
    with pytest.raises(NotOurFileError, match="left as it is.*delete it"):
        download_hmt(tmp_path, url=server.url + ZIP_PATH, sha256=small_zip.sha256, progress=False)
    assert (tmp_path / ZIP_NAME).read_bytes() == b"the user's own file"
    assert server.hits == [] and sorted(p.name for p in tmp_path.iterdir()) == [ZIP_NAME]


def test_download_goes_to_the_data_home_with_the_users_permissions(small_zip, server, tmp_path, monkeypatch):
    server.files[ZIP_PATH] = small_zip.data
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(home))
    monkeypatch.delenv("COURSE_HMT_DIR", raising=False)
    monkeypatch.chdir(elsewhere)
    old = os.umask(0o022)
    try:
        path = download_hmt(url=server.url + ZIP_PATH, sha256=small_zip.sha256, progress=False)
    finally:
        os.umask(old)
    assert path == (home / ZIP_NAME).resolve() and not any(elsewhere.iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert find_hmt() == home / ZIP_NAME


def test_unreachable_file_raises_connection_error(small_zip, server, tmp_path):
    with pytest.raises(ConnectionError, match="https://zenodo.org/record/53169"):
        download_hmt(tmp_path / "data", url=server.url + "/missing.zip", sha256=small_zip.sha256, progress=False)
    assert not (tmp_path / "data" / ZIP_NAME).exists()


@pytest.mark.parametrize("argument", [{"sha256": "936d0b95"}, {"url": "ftp://zenodo.org/x.zip"}])
def test_bad_arguments_raise(tmp_path, argument):
    with pytest.raises(ValueError, match=next(iter(argument))):
        download_hmt(tmp_path, progress=False, **argument)
    assert list(tmp_path.iterdir()) == []
