import json
from pathlib import Path

import numpy as np
import pytest

from neurolesion import InputError
from neurolesion.io.bids import bids_images
from neurolesion.io.case import Case, convert_case, load_case
from neurolesion.io.naming import sequence_from_text
from tests.conftest import write_nifti


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FLAIR.nii.gz", "flair"),
        ("T1POST.nii.gz", "t1c"),
        ("study1_T2W.nii.gz", "t2"),
        ("Ax T2* GRE", "t2star"),
        ("SWI_Images", "swi"),
        ("WIP_ADNI_Sag3D_MPRAGE_cl", "t1"),
        ("AX T1 +C", "t1c"),
        ("Sag_T1_FLAIR.nii.gz", "t1"),
        ("t2_tirm_tra.nii.gz", "flair"),
        ("T1_pre_contrast.nii.gz", "t1"),
        ("gt.nii.gz", None),
        ("brainmask_common.nii.gz", None),
    ],
)
def test_sequence_from_text(text: str, expected: str | None) -> None:
    assert sequence_from_text(text) == expected


def _bids(root: Path, head: np.ndarray) -> Path:
    anat = root / "sub-01" / "ses-01" / "anat"
    for name in ("T1w", "ce-gadolinium_T1w", "FLAIR", "T2starw", "swi", "T2w", "dwi"):
        write_nifti(anat / f"sub-01_ses-01_{name}.nii.gz", head)
    (anat / "sub-01_ses-01_T1w.json").write_text("{}")
    return root / "sub-01"


def test_bids_subject_with_one_session(tmp_path: Path, head_like: np.ndarray) -> None:
    found = bids_images(_bids(tmp_path, head_like))
    assert sorted(found) == ["flair", "swi", "t1", "t1c", "t2", "t2star"]
    assert found["t1c"].name == "sub-01_ses-01_ce-gadolinium_T1w.nii.gz"


def test_bids_subject_with_two_sessions_asks_for_one(tmp_path: Path, head_like: np.ndarray) -> None:
    sub = _bids(tmp_path, head_like)
    write_nifti(sub / "ses-02" / "anat" / "sub-01_ses-02_T1w.nii.gz", head_like)
    with pytest.raises(InputError, match="ses-01, ses-02"):
        bids_images(sub)
    case = load_case(sub / "ses-02")
    assert case.sequences == ["t1"] and case.source["kind"] == "bids"


def test_load_case_from_nifti_folder_file_and_overrides(tmp_path: Path, head_like: np.ndarray) -> None:
    write_nifti(tmp_path / "p" / "FLAIR.nii.gz", head_like)
    write_nifti(tmp_path / "p" / "T1.nii.gz", head_like)
    write_nifti(tmp_path / "p" / "gt.nii.gz", (head_like > 50).astype(np.uint8))
    case = load_case(tmp_path / "p")
    assert case.sequences == ["t1", "flair"] and case.reference == "flair"
    single = load_case(tmp_path / "p" / "T1.nii.gz", overrides={"t2star": tmp_path / "p" / "FLAIR.nii.gz"})
    assert single.sequences == ["t1", "t2star"] and single.reference == "t1"
    write_nifti(tmp_path / "scan.nii.gz", head_like)
    with pytest.raises(InputError, match="does not tell the sequence"):
        load_case(tmp_path / "scan.nii.gz")
    assert load_case(None, overrides={"SWI": tmp_path / "scan.nii.gz"}).sequences == ["swi"]


def test_load_case_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_case(tmp_path / "nothing")
    with pytest.raises(InputError, match="no input image"):
        load_case(None)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="single input file must be NIfTI"):
        load_case(tmp_path / "notes.txt")
    t1 = load_case(None, {"t1": write_nifti(tmp_path / "a.nii", np.eye(3)[None].repeat(3, 0))}).images["t1"]
    with pytest.raises(InputError, match="reference sequence 't2'"):
        Case(images={"t1": t1}, reference="t2")


def test_convert_writes_one_nifti_per_sequence_and_json(tmp_path: Path, head_like: np.ndarray) -> None:
    written = convert_case(_bids(tmp_path / "in", head_like), tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == [
        "detected.json",
        "flair.nii.gz",
        "swi.nii.gz",
        "t1.nii.gz",
        "t1c.nii.gz",
        "t2.nii.gz",
        "t2star.nii.gz",
    ]
    detected = json.loads((tmp_path / "out" / "detected.json").read_text())
    assert detected["kind"] == "bids" and detected["sequences"]["flair"]["shape"] == list(head_like.shape)
