"""Upload safety: paths, links, sizes."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from neurolesion.errors import InputError
from neurolesion.service.uploads import UploadTooLarge, extract_zip, safe_relative_path, store_upload


@pytest.mark.parametrize("name", ["../a", "/etc/passwd", "a/../../b", "C:\\x", "..\\..\\x", "", "a\nb"])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InputError):
        safe_relative_path(name)


def test_safe_names_keep_their_folders() -> None:
    assert safe_relative_path("study\\series 1/./IM0001") == Path("study/series 1/IM0001")


def test_zip_links_and_bombs_are_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("evil")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        extract_zip(link, tmp_path / "out", 1 << 20)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * (3 << 20))
    with pytest.raises(UploadTooLarge):
        extract_zip(bomb, tmp_path / "out2", 1 << 20)
    assert (
        not (tmp_path / "out2" / "zeros").exists() or (tmp_path / "out2" / "zeros").stat().st_size <= 1 << 20
    )


def test_store_upload_limits_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(UploadTooLarge):
        store_upload([("a.dcm", io.BytesIO(b"x" * 100))], tmp_path / "a", max_bytes=50, max_unzipped_bytes=50)
    with pytest.raises(InputError, match="twice"):
        store_upload(
            [("a.dcm", io.BytesIO(b"x")), ("a.dcm", io.BytesIO(b"y"))],
            tmp_path / "b",
            max_bytes=99,
            max_unzipped_bytes=99,
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("s/IM1", b"1")
        zf.writestr("__MACOSX/s/._IM1", b"junk")
    buffer.seek(0)
    stored = store_upload([("study.zip", buffer)], tmp_path / "c", max_bytes=10_000, max_unzipped_bytes=100)
    assert stored == [tmp_path / "c" / "study" / "s" / "IM1"]
    assert not (tmp_path / "c" / "study.zip").exists()
