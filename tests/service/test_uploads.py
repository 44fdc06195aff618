"""Upload safety: paths, links, sizes."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from neurolesion.errors import InputError
from neurolesion.service.uploads import (
    UploadTooLarge,
    check_images,
    extract_zip,
    safe_relative_path,
    store_upload,
)


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


def _stored(tmp_path: Path, files: dict[str, bytes]) -> list[Path]:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in files]


def test_check_images_accepts_nifti_and_dicom_headers(tmp_path: Path) -> None:
    import gzip

    import nibabel as nib
    import numpy as np

    nifti = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).to_bytes()
    dicom = b"\0" * 128 + b"DICM" + b"\2\0" * 8
    files = {"T1.nii": nifti, "FLAIR.nii.gz": gzip.compress(nifti), "s/IM1": dicom, "s/notes.txt": b"x"}
    check_images(_stored(tmp_path, files), tmp_path)
    check_images(_stored(tmp_path, {"s/IM2.dcm.gz": gzip.compress(dicom), "s/.DS_Store": b"junk"}), tmp_path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.txt": b"hello"}, r"no image among notes\.txt; expected NIfTI"),
        (
            {"scan.nii.gz": b"\x1f\x8b random"},
            r"scan\.nii\.gz: not a NIfTI image .* expected a gzipped NIfTI",
        ),
        ({"scan.nii": b"x" * 400}, r"scan\.nii: not a NIfTI image .* expected an uncompressed NIfTI"),
        ({"s/IM1.dcm": b"x" * 200}, r"s/IM1\.dcm: not a DICOM file"),
        ({"s/a.bin": b"x", "s/b.bin": b"y"}, r"no image among s/a\.bin, s/b\.bin"),
    ],
)
def test_check_images_names_the_file_that_is_not_an_image(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        check_images(_stored(tmp_path, files), tmp_path)
