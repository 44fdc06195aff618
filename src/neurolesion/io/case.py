"""`Case`: the images of one patient visit, keyed by sequence, and how to load one from any input."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurolesion.errors import InputError
from neurolesion.io.atomic import atomic_path
from neurolesion.io.bids import bids_images, is_bids_folder
from neurolesion.io.naming import sequence_from_text
from neurolesion.io.nifti import load_nifti, save_nifti
from neurolesion.registry import SEQUENCES, check_sequence
from neurolesion.volume import Volume

log = logging.getLogger(__name__)

#: Preference order for the reference sequence (the grid every output lands on).
REFERENCE_ORDER: tuple[str, ...] = ("flair", "t1c", "t1", "t2", "t2star", "swi")


@dataclass(frozen=True)
class Case:
    """One visit: images keyed by sequence name (registry.SEQUENCES), each on its own native grid.

    Attributes:
        images: sequence name -> Volume (native grid, as read from disk).
        source: where it came from: ``{"kind": "dicom"|"nifti"|"bids", "path": str, ...}``; for DICOM also
            the series records (UIDs, detected sequence, confidence) the DICOM outputs reference.
        reference: the sequence whose native grid outputs land on; the first of REFERENCE_ORDER present
            unless given.

    Raises:
        InputError: no image, or an unknown sequence name.
    """

    images: Mapping[str, Volume]
    source: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""

    def __post_init__(self) -> None:
        if not self.images:
            raise InputError(f"{self.source.get('path', 'case')}: no image found")
        unknown = set(self.images) - set(SEQUENCES)
        if unknown:
            raise InputError(f"unknown sequence(s) {sorted(unknown)}; expected names from {list(SEQUENCES)}")
        ref = self.reference or next(s for s in (*REFERENCE_ORDER, *self.images) if s in self.images)
        if ref not in self.images:
            raise InputError(f"reference sequence {ref!r} is not among the case's {sorted(self.images)}")
        object.__setattr__(self, "reference", ref)

    @property
    def sequences(self) -> list[str]:
        """Sequence names present, in registry order."""
        return [s for s in SEQUENCES if s in self.images]

    @property
    def reference_volume(self) -> Volume:
        return self.images[self.reference]


_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(_NIFTI_SUFFIXES)


def _nifti_folder_images(folder: Path) -> dict[str, Path]:
    """NIfTI files of a plain folder whose names tell their sequence (FLAIR.nii.gz, T1.nii.gz, ...)."""
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if not _is_nifti(file):
            continue
        seq = sequence_from_text(file.name)
        if seq is None:
            log.info("%s: name does not tell a sequence, skipped", file)
        elif seq in found:
            raise InputError(
                f"{folder}: both {found[seq].name} and {file.name} look like {seq}; name the one to use "
                f"with --{seq}"
            )
        else:
            found[seq] = file
    return found


def _dicom_case(folder: Path) -> tuple[dict[str, Volume], dict[str, Any]]:
    from neurolesion.io.dicom import read_dicom_folder

    series = read_dicom_folder(folder)
    chosen: dict[str, Any] = {}
    for s in series:
        if s.sequence not in SEQUENCES:
            log.info("%s: series %r detected as %s, not used", folder, s.description, s.sequence)
            continue
        best = chosen.get(s.sequence)
        if best is None or s.confidence > best.confidence:
            if best is not None:
                log.warning("%s: several %s series; using %r", folder, s.sequence, s.description)
            chosen[s.sequence] = s
    images = {seq: s.volume for seq, s in chosen.items()}
    source = {
        "kind": "dicom",
        "path": str(folder),
        "series": [s.summary() for s in series],
        "dicom_series": chosen,
    }
    if not images:
        described = "; ".join(f"{s.description!r}: {s.sequence}" for s in series)
        raise InputError(
            f"{folder}: no series recognised as one of {', '.join(SEQUENCES)} ({described}); name them with "
            "--t1/--t1c/--t2/--flair/--t2star/--swi"
        )
    return images, source


def load_case(
    input: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, str | os.PathLike[str]] | None = None,
    reference: str = "",
) -> Case:
    """Load one visit from a DICOM folder, a BIDS subject/session folder, a NIfTI file or a NIfTI folder.

    Args:
        input: DICOM folder (any nesting, several series), BIDS folder, NIfTI file whose name tells the
            sequence (``FLAIR.nii.gz``), or a folder of such NIfTI files. May be None when `overrides` names
            every image.
        overrides: sequence name -> NIfTI file or DICOM series folder; wins over detection.
        reference: the sequence whose grid outputs land on (default: the first of REFERENCE_ORDER present).

    Returns:
        The Case, every image on its native grid.

    Raises:
        InputError: missing path, unreadable image, nothing recognisable, unknown sequence name.

    Example:
        >>> case = load_case("patient19/")  # doctest: +SKIP
        >>> case.sequences, case.reference  # doctest: +SKIP
        (['t1', 't1c', 't2', 'flair'], 'flair')
    """
    images: dict[str, Volume] = {}
    source: dict[str, Any] = {"kind": "files", "path": str(input) if input is not None else ""}
    if input is not None:
        path = Path(input)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file():
            if not _is_nifti(path):
                raise InputError(
                    f"{path}: a single input file must be NIfTI (.nii or .nii.gz); give DICOM as a folder"
                )
            seq = sequence_from_text(path.name)
            if seq is None and not overrides:
                raise InputError(
                    f"{path}: the file name does not tell the sequence; name it with --flair, --t1, --t1c, --t2, "
                    "--t2star or --swi"
                )
            if seq is not None:
                images[seq] = load_nifti(path)
            source = {"kind": "nifti", "path": str(path)}
        elif is_bids_folder(path):
            images = {seq: load_nifti(f) for seq, f in bids_images(path).items()}
            source = {"kind": "bids", "path": str(path)}
        elif (nifti := _nifti_folder_images(path)) and not _has_dicom(path):
            images = {seq: load_nifti(f) for seq, f in nifti.items()}
            source = {"kind": "nifti", "path": str(path)}
        else:
            images, source = _dicom_case(path)
    for name, file in (overrides or {}).items():
        seq = check_sequence(name)
        fp = Path(file)
        if fp.is_dir():
            from neurolesion.io.dicom import read_dicom_folder

            found = read_dicom_folder(fp)
            if len(found) != 1:
                raise InputError(
                    f"{fp}: --{seq} needs a folder with exactly one image series, found {len(found)}"
                )
            series = found[0].with_sequence(seq)
            images[seq] = series.volume
            source.setdefault("dicom_series", {})[seq] = series
        else:
            images[seq] = load_nifti(fp)
        source.setdefault("overrides", {})[seq] = str(fp)
    if not images:
        raise InputError(
            "no input image: give an INPUT or at least one of --t1/--t1c/--t2/--flair/--t2star/--swi"
        )
    return Case(images=images, source=source, reference=reference)


def _has_dicom(folder: Path) -> bool:
    """True when the folder holds anything that is not NIfTI or a sidecar (then it is read as DICOM)."""
    return any(
        f.is_file() and not _is_nifti(f) and f.suffix.lower() not in (".json", ".txt", ".md", ".tsv")
        for f in folder.rglob("*")
    )


def convert_case(input: str | os.PathLike[str], output: str | os.PathLike[str]) -> list[Path]:
    """Write one NIfTI per detected sequence plus ``detected.json`` describing what was found.

    Args:
        input: DICOM, BIDS or NIfTI input as for `load_case`.
        output: folder to write into (created).

    Returns:
        The files written.

    Raises:
        InputError: as `load_case`.
    """
    case = load_case(input)
    out = Path(output)
    written = [save_nifti(vol, out / f"{seq}.nii.gz") for seq, vol in case.images.items()]
    detected = {
        "input": str(input),
        "kind": case.source.get("kind"),
        "reference": case.reference,
        "sequences": {
            seq: {"shape": list(v.shape), "spacing_mm": [round(s, 6) for s in v.spacing], "source": v.name}
            for seq, v in case.images.items()
        },
        "series": case.source.get("series", []),
    }
    with atomic_path(out / "detected.json") as tmp:
        tmp.write_text(json.dumps(detected, indent=2, default=str))
    written.append(out / "detected.json")
    return written
