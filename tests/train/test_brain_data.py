"""Data for contrast-agnostic models: one random sequence per patch, cases resampled to the model spacing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from neurolesion.train.data import blob_case, load_case_folder, sample_patch
from tests.conftest import write_nifti


def test_one_sequence_patches_take_a_random_present_sequence() -> None:
    case = blob_case(np.random.default_rng(0), (20, 20, 20), ("t1", "t2", "flair"), ("brain",))
    image = np.stack([np.full((20, 20, 20), c + 1.0, np.float32) for c in range(3)])
    case = replace(case, image=image, present=np.array([True, False, True]))
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(40):
        patch = sample_patch(case, rng, (8, 8, 8), lesion_prob=0.0, one_sequence=True)
        assert patch["image"].shape == (1, 8, 8, 8) and patch["present"].tolist() == [True]
        assert patch["label"].shape == (1, 8, 8, 8)
        seen.add(float(patch["image"][0, 4, 4, 4]))
    assert seen == {1.0, 3.0}  # both present sequences, never the missing one
    assert sample_patch(case, rng, (8, 8, 8))["image"].shape == (3, 8, 8, 8)


def test_case_folder_resampled_to_model_spacing_with_brain_as_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((24, 20, 16), np.uint8)
    mask[4:20, 4:16, 4:12] = 1
    head = (rng.normal(50, 5, mask.shape) + 100 * mask).astype(np.float32)
    write_nifti(tmp_path / "c" / "brain_mask.nii.gz", mask)
    write_nifti(tmp_path / "c" / "t2.nii.gz", head)
    case = load_case_folder(
        tmp_path / "c", ("t1", "t2"), ("brain",), normalisation="percentile-nonzero", spacing=(2.0, 2.0, 2.0)
    )
    assert case.image.shape == (2, 12, 10, 8) and case.spacing == (2.0, 2.0, 2.0)
    assert case.present.tolist() == [False, True]
    assert 0.0 <= case.image.min() and case.image.max() <= 1.0
    assert np.array_equal(case.label[0] > 0, case.brain)
    assert abs(int(case.brain.sum()) * 8 - int(mask.sum())) <= 0.1 * mask.sum()
    same = load_case_folder(tmp_path / "c", ("t2",), ("brain",), spacing=(1.0, 1.0, 1.0))
    assert same.image.shape == (1, 24, 20, 16) and np.array_equal(same.brain, mask > 0)
