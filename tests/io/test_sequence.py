"""Sequence detection from DICOM header fields: names, physics, contrast, and their agreement."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from neurolesion.io.sequence import detect_sequence

# Header fields as real scanners write them (description, then the physics).
CASES: list[tuple[dict[str, Any], str]] = [
    (
        {
            "SeriesDescription": "t1_mprage_sag_p2_iso",
            "ScanningSequence": "GR\\IR",
            "SequenceVariant": "SP\\MP",
            "RepetitionTime": 2300,
            "EchoTime": 2.98,
            "InversionTime": 900,
        },
        "t1",
    ),
    (
        {
            "SeriesDescription": "ADNI_Sag3D MPRAGE",
            "ScanningSequence": "GR",
            "SequenceVariant": "MP",
            "RepetitionTime": 6.5,
            "EchoTime": 2.93,
        },
        "t1",
    ),
    ({"SeriesDescription": "Sag T1 BRAVO", "ContrastBolusAgent": "Gadavist 7ml"}, "t1c"),
    ({"SeriesDescription": "t1_mprage_tra POST GD"}, "t1c"),
    ({"SeriesDescription": "T1W_3D_TFE +C"}, "t1c"),
    ({"SeriesDescription": "T1 pre contrast"}, "t1"),
    ({"SeriesDescription": "Ax T1 FLAIR", "ScanningSequence": "SE\\IR", "InversionTime": 860}, "t1"),
    (
        {
            "SeriesDescription": "t2_tse_tra_512",
            "ScanningSequence": "SE",
            "RepetitionTime": 6000,
            "EchoTime": 95,
        },
        "t2",
    ),
    (
        {
            "SeriesDescription": "t2_tirm_tra_dark-fluid",
            "ScanningSequence": "SE\\IR",
            "RepetitionTime": 9000,
            "EchoTime": 81,
            "InversionTime": 2500,
        },
        "flair",
    ),
    ({"SeriesDescription": "3D T2 FLAIR SPACE"}, "flair"),
    ({"SeriesDescription": "T2W_FLAIR"}, "flair"),
    (
        {
            "SeriesDescription": "t2_fl2d_tra_hemo",
            "ScanningSequence": "GR",
            "RepetitionTime": 650,
            "EchoTime": 20,
        },
        "t2star",
    ),
    ({"SeriesDescription": "Ax T2* GRE"}, "t2star"),
    ({"SeriesDescription": "SWI_Images", "ImageType": ["DERIVED", "PRIMARY", "SWI", "NORM"]}, "swi"),
    ({"SeriesDescription": "Ax SWAN"}, "swi"),
    ({"SeriesDescription": "VEN_BOLD"}, "swi"),
    ({"SeriesDescription": "Axial T2 gradient echo"}, "t2star"),
    ({"SeriesDescription": "ep2d_diff_3scan_trace"}, "other"),
    ({"SeriesDescription": "AAHead_Scout_64ch-head-coil"}, "other"),
    ({"SeriesDescription": "tof_3d_multi-slab"}, "other"),
]


@pytest.mark.parametrize(("fields", "expected"), CASES, ids=[c[0]["SeriesDescription"] for c in CASES])
def test_detects_sequence_from_names(fields: dict[str, Any], expected: str) -> None:
    name, confidence, reason = detect_sequence(fields)
    assert name == expected, reason
    assert 0.0 < confidence <= 1.0
    assert reason


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ScanningSequence": "SE", "RepetitionTime": 500, "EchoTime": 12}, "t1"),
        ({"ScanningSequence": "SE", "RepetitionTime": 4000, "EchoTime": 100}, "t2"),
        (
            {"ScanningSequence": "SE\\IR", "RepetitionTime": 9000, "EchoTime": 120, "InversionTime": 2500},
            "flair",
        ),
        ({"ScanningSequence": "GR", "RepetitionTime": 40, "EchoTime": 25}, "t2star"),
        ({"ScanningSequence": "GR", "RepetitionTime": 8, "EchoTime": 3}, "t1"),
        (
            {"ScanningSequence": "GR", "RepetitionTime": 8, "EchoTime": 3, "ContrastBolusAgent": "Dotarem"},
            "t1c",
        ),
    ],
)
def test_physics_decides_without_names(fields: dict[str, Any], expected: str) -> None:
    name, confidence, _ = detect_sequence(fields)
    assert name == expected
    assert 0.5 <= confidence < 0.9  # physics alone is less sure than a name


def test_agreement_raises_and_conflict_lowers_confidence() -> None:
    name_only = detect_sequence({"SeriesDescription": "T2 axial"})
    agree = detect_sequence(
        {"SeriesDescription": "T2 axial", "ScanningSequence": "SE", "RepetitionTime": 5000, "EchoTime": 90}
    )
    conflict = detect_sequence(
        {"SeriesDescription": "T2 axial", "ScanningSequence": "SE", "RepetitionTime": 450, "EchoTime": 10}
    )
    assert name_only[0] == agree[0] == conflict[0] == "t2"
    assert conflict[1] < name_only[1] < agree[1]
    assert "t1" in conflict[2]  # the reason says what physics suggested


def test_unrecognised_is_other_with_zero_confidence() -> None:
    assert detect_sequence({"SeriesDescription": "series 7"}) == (
        "other",
        0.0,
        "no name or timing recognised",
    )


def test_accepts_a_pydicom_dataset() -> None:
    ds = Dataset()
    ds.SeriesDescription = "AX FLAIR"
    ds.RepetitionTime = "9000"
    ds.EchoTime = "120"
    ds.InversionTime = "2500"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    assert detect_sequence(ds)[:2] == ("flair", 0.95)
