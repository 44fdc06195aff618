"""Safe storage of uploaded studies: size limits, path checks, zip extraction without surprises.

Uploads are written below the job's ``input/`` folder only, never executed and never served back.
Zip entries and browser folder paths with an absolute path, a drive, ``..`` or a link are rejected.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

import nibabel as nib
from nibabel.filebasedimages import ImageFileError

from neurolesion.errors import InputError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_SIDECARS = (".json", ".txt", ".md", ".tsv")  # read beside images, never as images (as neurolesion.io.case)
_DICOM_NAMES = (".dcm", ".dcm.gz", ".dicom", ".dicom.gz", ".ima")


class UploadTooLarge(InputError):
    """The upload (or what its zips expand to) is over the configured limit (HTTP 413)."""


def safe_relative_path(name: str) -> Path:
    """A relative path that stays inside its folder, from a client-supplied file or zip-entry name.

    Args:
        name: as sent by the browser (``folder/IM0001``) or stored in a zip entry.

    Returns:
        The relative path.

    Raises:
        InputError: empty, absolute, with a drive letter, a ``..`` part or a control character.

    Example:
        >>> safe_relative_path("study/series1/IM0001")
        PosixPath('study/series1/IM0001')
        >>> safe_relative_path("../etc/passwd")
        Traceback (most recent call last):
        ...
        neurolesion.errors.InputError: upload entry '../etc/passwd': path leaves the upload folder; expected a relative path without '..'
    """
    text = name.replace("\\", "/")
    pure = PurePosixPath(text)
    parts = [p for p in pure.parts if p not in ("", ".")]
    if (
        not parts
        or pure.is_absolute()
        or ".." in parts
        or (len(parts[0]) >= 2 and parts[0][1] == ":")
        or any(ord(c) < 32 for c in text)
    ):
        raise InputError(
            f"upload entry {name!r}: path leaves the upload folder; expected a relative path without '..'"
        )
    return Path(*parts)


def _copy_limited(source: IO[bytes], target: Path, budget: int, what: str) -> int:
    """Copy in chunks; raise UploadTooLarge once more than `budget` bytes came. Returns bytes copied."""
    copied = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > budget:
                raise UploadTooLarge(f"{what}: larger than the limit of {budget // _CHUNK or 1} MB")
            out.write(chunk)
    return copied


def extract_zip(archive: Path, dest: Path, max_bytes: int) -> list[Path]:
    """Extract a zip below `dest`, checking every entry first.

    Args:
        archive: the uploaded zip.
        dest: folder to extract into.
        max_bytes: limit on the total uncompressed size (checked on declared sizes, then while writing).

    Returns:
        The files written.

    Raises:
        InputError: not a zip, an entry with an unsafe path or a symbolic link, a duplicate entry.
        UploadTooLarge: the content expands past `max_bytes`.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive.name}: not a readable zip archive ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        targets = []
        for info in infos:
            rel = safe_relative_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise InputError(
                    f"{archive.name}: entry {info.filename!r} is a symbolic link; expected files"
                )
            targets.append(dest / rel)
        if len(set(targets)) != len(targets):
            raise InputError(f"{archive.name}: the same path appears twice in the archive")
        if sum(i.file_size for i in infos) > max_bytes:
            raise UploadTooLarge(f"{archive.name}: expands past the limit of {max_bytes // _CHUNK} MB")
        budget = max_bytes
        for info, target in zip(infos, targets, strict=True):
            with zf.open(info) as source:
                budget -= _copy_limited(source, target, budget, archive.name)
    return targets


def store_upload(
    files: Iterable[tuple[str, IO[bytes]]], dest: Path, *, max_bytes: int, max_unzipped_bytes: int
) -> list[Path]:
    """Write uploaded files below `dest`, expanding zips; the originals of zips are removed.

    Args:
        files: (client file name, stream) pairs; names may carry a folder path (browser folder upload).
        dest: the job's input folder (created).
        max_bytes: limit on the bytes of all files together.
        max_unzipped_bytes: limit on what all zips expand to together.

    Returns:
        The files now below `dest`.

    Raises:
        InputError: no file, an unsafe name, a duplicate name, a bad zip.
        UploadTooLarge: over a limit.

    Example:
        >>> store_upload([("FLAIR.nii.gz", open("FLAIR.nii.gz", "rb"))], Path("job/input"),
        ...              max_bytes=1 << 30, max_unzipped_bytes=1 << 32)  # doctest: +SKIP
        [PosixPath('job/input/FLAIR.nii.gz')]
    """
    dest.mkdir(parents=True, exist_ok=True)
    budget = max_bytes
    stored: list[Path] = []
    zips: list[Path] = []
    for name, stream in files:
        rel = safe_relative_path(name)
        target = dest / rel
        if target in stored or target.exists():
            raise InputError(f"upload entry {name!r}: sent twice; expected each file once")
        budget -= _copy_limited(stream, target, budget, "upload")
        (zips if rel.suffix.lower() == ".zip" else stored).append(target)
    if not stored and not zips:
        raise InputError("upload: no file received; expected DICOM (zip or folder) or NIfTI files")
    unzip_budget = max_unzipped_bytes
    for archive in zips:
        folder = archive.with_suffix("")
        extracted = extract_zip(archive, folder, unzip_budget)
        unzip_budget -= sum(p.stat().st_size for p in extracted)
        archive.unlink()
        stored.extend(extracted)
    return stored


def _head(path: Path, size: int) -> bytes:
    """The first `size` bytes, decompressed when the file is gzipped."""
    with path.open("rb") as fh:
        head = fh.read(size)
    if head[:2] != _GZIP_MAGIC:
        return head
    try:
        with gzip.open(path) as fh:
            return fh.read(size)
    except (OSError, EOFError):
        return b""


def _is_nifti(path: Path) -> bool:
    """nibabel reads the file's header (not its data) as NIfTI-1 or NIfTI-2, decompressing as its name says."""
    try:
        image = nib.load(path)
    except (ImageFileError, OSError, EOFError, ValueError):
        return False
    return isinstance(image, (nib.Nifti1Image, nib.Nifti2Image))


def _is_dicom_header(head: bytes) -> bool:
    """A DICOM file: the "DICM" preamble, or a preamble-less data set starting with group 0008/0002."""
    return head[128:132] == b"DICM" or head[:2] in (b"\x08\x00", b"\x02\x00")


def check_images(files: Iterable[Path], root: Path) -> None:
    """Refuse an upload holding no image, or a file named as an image whose header says otherwise.

    Only headers are read (nibabel for NIfTI, the first bytes for DICOM). Files that are neither NIfTI nor
    DICOM and not named as such (a scanner CD's viewer, ``.DS_Store``) are left for the loader, which skips
    them, as long as the upload holds at least one image; sidecars (``.json``, ``.txt`` ...) never count
    as images.

    Args:
        files: the stored files (as `store_upload` returns them).
        root: the folder they were stored below; messages name files relative to it.

    Raises:
        InputError: a ``.nii``/``.nii.gz`` file without a NIfTI header (gzipped for ``.nii.gz``, not for
            ``.nii``), a file named as DICOM without a DICOM header, or no image at all.

    Example:
        >>> check_images([Path("job/input/notes.txt")], Path("job/input"))  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        neurolesion.errors.InputError: upload: no image among notes.txt; expected NIfTI files ...
    """
    files = list(files)
    images = 0
    for path in files:
        name, lower = str(path.relative_to(root)), path.name.lower()
        if lower.endswith((".nii", ".nii.gz")):
            if not _is_nifti(path):
                kind = "a gzipped NIfTI file" if lower.endswith(".gz") else "an uncompressed NIfTI file"
                raise InputError(f"{name}: not a NIfTI image (no valid NIfTI header); expected {kind}")
            images += 1
        elif lower.endswith(_SIDECARS):
            continue
        elif _is_dicom_header(_head(path, 132)):
            images += 1
        elif lower.endswith(_DICOM_NAMES):
            raise InputError(f"{name}: not a DICOM file (no DICOM header); expected a DICOM image")
        else:
            log.info("upload %s: neither NIfTI nor DICOM, left for the loader to skip", name)
    if not images:
        shown = ", ".join(str(p.relative_to(root)) for p in files[:5]) + (" ..." if len(files) > 5 else "")
        raise InputError(
            f"upload: no image among {shown}; expected NIfTI files (.nii, .nii.gz) or DICOM files "
            "(a zip or a folder)"
        )


def remove_tree(folder: Path) -> None:
    """Delete a job folder (used when an upload is refused)."""
    shutil.rmtree(folder, ignore_errors=True)
