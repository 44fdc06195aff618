"""Agreement between AI and accepted label maps (pure function)."""

from __future__ import annotations

import numpy as np

from neurolesion.service.review import compare


def _labels() -> np.ndarray:
    ai = np.zeros((10, 10, 10), np.uint16)
    ai[1:3, 1:3, 1:3] = 1  # 8 voxels
    ai[6:9, 6:9, 6:9] = 2  # 27 voxels
    return ai


def test_identical_maps_agree_fully() -> None:
    result = compare(_labels(), _labels(), 0.001, reviewer_accepted=[2])
    assert result["case_dice"] == 1.0
    assert [(r["status"], r["dice"], r["reviewer_accepted"]) for r in result["lesions"]] == [
        ("unchanged", 1.0, False),
        ("unchanged", 1.0, True),
    ]


def test_relabelled_split_and_added_lesions() -> None:
    accepted = _labels()
    accepted[accepted == 1] = 4  # relabelled: same voxels, another id
    accepted[6:9, 6:9, 8] = 5  # a slice of lesion 2 becomes its own lesion (split)
    accepted[0, 9, 9] = 9  # added
    rows = {r["ai_id"]: r for r in compare(_labels(), accepted, 0.001)["lesions"]}
    assert rows[1]["accepted_ids"] == [4] and rows[1]["dice"] == 1.0
    assert rows[2]["accepted_ids"] == [2, 5] and rows[2]["dice"] == 1.0
    assert rows[None]["status"] == "added" and rows[None]["accepted_volume_ml"] == 0.001


def test_deleted_and_shrunk_lesions() -> None:
    accepted = _labels()
    accepted[accepted == 1] = 0
    accepted[6:9, 6:9, 8] = 0  # 18 of 27 voxels left
    result = compare(_labels(), accepted, 0.001)
    deleted, shrunk = result["lesions"]
    assert deleted["status"] == "deleted" and deleted["dice"] == 0.0
    assert shrunk["status"] == "edited" and abs(shrunk["dice"] - 2 * 18 / 45) < 1e-4
    assert abs(result["case_dice"] - 2 * 18 / (35 + 18)) < 1e-4
