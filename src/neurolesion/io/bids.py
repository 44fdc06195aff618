"""BIDS input: the anatomical images of one subject or session folder, keyed by sequence."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from neurolesion.errors import InputError

log = logging.getLogger(__name__)

_NIFTI = re.compile(r"\.nii(\.gz)?$")

#: BIDS suffix -> sequence name (contrast-enhanced T1w is told apart by the `ce-` entity).
_SUFFIXES: dict[str, str] = {
    "T1w": "t1",
    "T2w": "t2",
    "FLAIR": "flair",
    "T2starw": "t2star",
    "T2star": "t2star",
}


def is_bids_folder(path: Path) -> bool:
    """True when `path` is a BIDS subject or session folder (it has an ``anat`` folder, or sessions)."""
    if not path.is_dir():
        return False
    if (path / "anat").is_dir():
        return True
    return path.name.startswith("sub-") and any(p.is_dir() for p in path.glob("ses-*"))


def _sequence_of(file: Path) -> str | None:
    stem = _NIFTI.sub("", file.name)
    parts = stem.split("_")
    suffix = parts[-1]
    entities = dict(p.split("-", 1) for p in parts[:-1] if "-" in p)
    if suffix == "swi" or (suffix == "GRE" and entities.get("part") == "mag" and "swi" in stem.lower()):
        return "swi"
    if suffix == "T1w" and "ce" in entities:
        return "t1c"
    return _SUFFIXES.get(suffix)


def bids_images(path: str | Path) -> dict[str, Path]:
    """Find the anatomical images of a BIDS subject or session folder.

    Args:
        path: ``sub-XX`` (without sessions, or with exactly one) or ``sub-XX/ses-YY``.

    Returns:
        sequence name -> NIfTI file. When several runs share a sequence, the last run is taken (logged).

    Raises:
        InputError: not a BIDS folder, several sessions (name one), or no known anatomical image.

    Example:
        >>> bids_images("ds/sub-01/ses-01")  # doctest: +SKIP
        {'t1': PosixPath('ds/sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz'), ...}
    """
    root = Path(path)
    if not is_bids_folder(root):
        raise InputError(f"{root}: not a BIDS subject or session folder (no anat/ folder inside)")
    if not (root / "anat").is_dir():
        sessions = sorted(p for p in root.glob("ses-*") if (p / "anat").is_dir())
        if len(sessions) != 1:
            names = ", ".join(p.name for p in sessions) or "none with anat/"
            raise InputError(f"{root}: has sessions ({names}); give one session folder, e.g. {root}/ses-XX")
        root = sessions[0]
    found: dict[str, Path] = {}
    for file in sorted((root / "anat").iterdir()):
        if not _NIFTI.search(file.name):
            continue
        seq = _sequence_of(file)
        if seq is None:
            log.info("%s: BIDS suffix not used by neurolesion, skipped", file)
            continue
        if seq in found:
            log.warning("%s: several %s images; using %s", root, seq, file.name)
        found[seq] = file
    if not found:
        raise InputError(f"{root / 'anat'}: no T1w, ce-*_T1w, T2w, FLAIR, T2starw or swi NIfTI image found")
    return found
