"""Uploads: only text CSV/TSV/JSON/NDJSON passes, judged by name and by the first bytes;
oversized files are refused without being read, and an over-large request gets a clear 413."""
import codecs
import io
import zipfile

import pytest
from werkzeug.datastructures import FileStorage

from crm.services import uploads
from crm.services.errors import ValidationError
from crm.views.access import access
from tests.conftest import soup, text_of


class CountingStream(io.BytesIO):
    """A file that remembers how many bytes were read from it."""

    def __init__(self, data=b"", size=None):
        super().__init__(data)
        self.bytes_read = 0
        self.fake_size = size

    def read(self, n=-1):
        chunk = super().read(n)
        self.bytes_read += len(chunk)
        return chunk

    def seek(self, offset, whence=0):
        if self.fake_size is not None and whence == 2:
            return self.fake_size
        return super().seek(offset, whence)


def _refused(data: bytes, name: str, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        uploads.check_upload(io.BytesIO(data), name, **kwargs)
    return caught.value.fields["file"]


@pytest.mark.parametrize("name,data,fmt", [
    ("orders.csv", b"Name,Email\n#1001,a@example.com\n", "csv"),
    ("ORDERS.CSV", codecs.BOM_UTF8 + "Name,Email\n#1001,zoë@example.com\n".encode(), "csv"),
    ("customers.tsv", b"Name\tEmail\nAda\ta@example.com\n", "tsv"),
    ("orders.json", b'  [{"id": 1}]', "json"),
    ("orders.ndjson", b'{"id": 1}\n{"id": 2}\n', "ndjson"),
    ("orders.jsonl", b'{"id": 1}\n', "ndjson"),
])
def test_text_files_of_the_four_formats_pass(name, data, fmt):
    checked = uploads.check_upload(io.BytesIO(data), name)
    assert (checked.format, checked.size) == (fmt, len(data))


@pytest.mark.parametrize("name", ["orders.xlsx", "orders.exe", "orders", "orders.csv.zip", ""])
def test_other_names_are_refused(name):
    reason = _refused(b"Name\n1\n", name)
    assert "CSV, TSV, JSON or NDJSON" in reason or "Choose a file" in reason


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("orders.csv", b"0" * (50 * 1024 * 1024))  # 50 MB that packs into ~50 KB
    return buffer.getvalue()


@pytest.mark.parametrize("data,words", [
    (b"\x1f\x8b\x08\x00" + b"\x00" * 100, "gzip"),
    (b"%PDF-1.7\n...", "PDF"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Excel"),
    (b"Name,Email\n\x00\x01\x02\x03binary\x00\x00", "binary"),
    (codecs.BOM_UTF16_LE + "Name,Email\n".encode("utf-16-le"), "UTF-16"),
    ("Name,City\nJosé,Málaga\n".encode("latin-1"), "not UTF-8"),
    (b"   \n\n", "empty"),
])
def test_binary_or_undecodable_content_is_refused_whatever_its_name(data, words):
    assert words in _refused(data, "orders.csv")


def test_a_zip_bomb_named_csv_is_refused_from_its_first_bytes():
    bomb = CountingStream(_zip_bytes())
    with pytest.raises(ValidationError) as caught:
        uploads.check_upload(bomb, "orders.csv")
    assert "zip archive" in caught.value.fields["file"]
    assert bomb.bytes_read <= uploads.SNIFF_BYTES


def test_an_excel_workbook_named_csv_is_refused():
    assert "zip archive" in _refused(_zip_bytes()[:1000], "orders.csv")


def test_json_must_look_like_json():
    assert "JSON" in _refused(b"id,name\n1,a\n", "orders.json")


def test_a_huge_upload_is_refused_by_its_size_without_reading_it():
    two_gb = CountingStream(b"Name\n", size=2 * 1024**3)
    with pytest.raises(ValidationError) as caught:
        uploads.check_upload(two_gb, "orders.csv")
    assert "2,048 MB" in caught.value.fields["file"] and two_gb.bytes_read == 0


def test_a_huge_file_on_disk_is_refused_from_the_file_system(tmp_path):
    path = tmp_path / "orders.csv"
    with path.open("wb") as file:
        file.truncate(2 * 1024**3)  # sparse: 2 GB on paper, nothing on disk
    with pytest.raises(ValidationError) as caught:
        uploads.check_path(path)
    assert "largest file accepted is 50 MB" in caught.value.fields["file"]


def test_a_file_on_disk_is_checked_like_an_upload(tmp_path):
    path = tmp_path / "orders.ndjson"
    path.write_bytes(b'{"id": 1}\n')
    assert uploads.check_path(path).format == "ndjson"
    assert "not a file" in pytest.raises(ValidationError, uploads.check_path, tmp_path / "missing.csv").value.fields["file"]


def test_the_limit_can_be_set_per_call():
    assert "largest file" in _refused(b"Name\n" + b"x" * 2000, "orders.csv", max_bytes=1000)


def test_the_stream_is_put_back_for_the_reader():
    stream = io.BytesIO(b"Name\n" + "é".encode() * 40_000)  # the sniffed sample ends inside a character
    uploads.check_upload(stream, "orders.csv")
    assert stream.tell() == 0


def test_a_werkzeug_upload_is_checked_from_its_stream():
    file = FileStorage(stream=io.BytesIO(b"Name\nAda\n"), filename="../../etc/orders.csv")
    checked = uploads.check_file_storage(file)
    assert (checked.filename, checked.format) == ("orders.csv", "csv")
    with pytest.raises(ValidationError):
        uploads.check_file_storage(FileStorage(stream=io.BytesIO(b""), filename=""))


@pytest.fixture
def app_config():
    return {"MAX_CONTENT_LENGTH": 2000}


def _add_upload_routes(app):
    def receive():
        from flask import request

        return {"files": len(request.files)}

    app.add_url_rule("/upload-probe", "upload_probe", access("public")(receive), methods=["POST"])
    app.add_url_rule("/api/v1/upload-probe", "api_upload_probe", access("public")(receive), methods=["POST"])


def test_an_over_large_request_gets_a_clear_413_page(app, client):
    _add_upload_routes(app)
    ok = client.post("/upload-probe", data={"file": (io.BytesIO(b"Name\nAda\n"), "orders.csv")})
    assert ok.status_code == 200
    response = client.post("/upload-probe", data={"file": (io.BytesIO(b"x" * 5000), "orders.csv")})
    assert response.status_code == 413
    page = soup(response)
    assert text_of(page.select_one("h1")) == "File too large"
    assert "larger than the 2 KB" in text_of(page.select_one("main"))


def test_an_over_large_api_request_gets_a_json_413(app, client):
    _add_upload_routes(app)
    response = client.post("/api/v1/upload-probe", data={"file": (io.BytesIO(b"x" * 5000), "orders.csv")})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large" and "2 KB" in response.json["error"]["message"]
