"""Cases, patch sampling, augmentation and the stratified split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.train.augment import Augmenter, channel_dropout
from neurolesion.train.config import AugmentConfig
from neurolesion.train.data import blob_case, case_folders, load_case_folder, sample_patch
from neurolesion.train.splits import kfold_split
from tests.conftest import write_nifti


def test_lesion_sampling_probability() -> None:
    rng = np.random.default_rng(1)
    case = blob_case(rng, (48, 48, 48), ("flair",), ("wmh", "cmb"))
    centre_hits = []
    for _ in range(60):
        p = sample_patch(case, rng, (8, 8, 8), lesion_prob=1.0)
        centre_hits.append(p["label"][:, 4, 4, 4].any())
    assert np.mean(centre_hits) == 1.0
    bg = [sample_patch(case, rng, (8, 8, 8), lesion_prob=0.0)["label"][:, 4, 4, 4].any() for _ in range(60)]
    assert np.mean(bg) < 0.5


def test_class_balance_picks_rare_task_as_often() -> None:
    rng = np.random.default_rng(2)
    case = blob_case(rng, (48, 48, 48), ("flair",), ("wmh", "cmb"))
    case.label[1] = 0
    case.label[1, 30, 30, 30] = 1  # one voxel of task 1
    case._foreground.clear()
    hits = [
        sample_patch(case, rng, (4, 4, 4), 1.0, class_balanced=True)["label"][1, 2, 2, 2] for _ in range(200)
    ]
    assert 0.35 < np.mean(hits) < 0.65


def test_lesion_balance_centres_a_small_lesion_beside_a_large_one_as_often() -> None:
    rng = np.random.default_rng(3)
    case = blob_case(rng, (48, 48, 48), ("t2",), ("ccm",))
    case.label[:] = 0
    case.label[0, 4:24, 4:24, 4:24] = 1  # 8000 voxels
    case.label[0, 40, 40, 40] = 1  # one voxel
    case._foreground.clear()
    case.image[:] = 0
    case.image[0, 40, 40, 40] = 1  # marks the small lesion in a 1-voxel patch

    def small_share(balanced: bool) -> float:
        patches = [sample_patch(case, rng, (1, 1, 1), 1.0, lesion_balanced=balanced) for _ in range(200)]
        assert all(p["label"].all() for p in patches)
        return float(np.mean([p["image"][0, 0, 0, 0] == 1 for p in patches]))

    assert [len(les) for les in case.lesions(0)] == [8000, 1]
    assert small_share(balanced=False) < 0.05
    assert 0.35 < small_share(balanced=True) < 0.65


def test_patch_near_the_border_is_padded() -> None:
    case = blob_case(np.random.default_rng(3), (10, 10, 10), ("flair", "t1"), ("wmh",))
    p = sample_patch(case, np.random.default_rng(0), (16, 16, 16), lesion_prob=0.0)
    assert p["image"].shape == (2, 16, 16, 16) and p["label"].shape == (1, 16, 16, 16)


def test_case_folder_with_missing_sequence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[2:10, 2:10, 2:10] = 1
    labels = np.zeros_like(mask)
    labels[4:6, 4:6, 4:6] = 1
    labels[8, 8, 8] = 2
    write_nifti(tmp_path / "c1" / "brain_mask.nii.gz", mask)
    write_nifti(tmp_path / "c1" / "flair.nii.gz", rng.normal(100, 10, mask.shape).astype(np.float32))
    write_nifti(tmp_path / "c1" / "wmh_labels.nii.gz", labels)
    case = load_case_folder(tmp_path / "c1", ("t1", "flair"), ("wmh", "cmb"))
    assert case.present.tolist() == [False, True]
    assert case.image.shape == (2, 12, 12, 12) and not case.image[0].any()
    assert abs(float(case.image[1][mask > 0].mean())) < 0.1
    assert case.lesion_count == 2 and case.label[1].sum() == 0
    assert case_folders(tmp_path) == [tmp_path / "c1"]
    with pytest.raises(InputError, match="none of the input"):
        load_case_folder(tmp_path / "c1", ("swi",), ("cmb",))


def test_augmentation_is_seeded_and_keeps_labels_binary() -> None:
    case = blob_case(np.random.default_rng(4), (32, 32, 32), ("flair", "t1"), ("wmh",))
    patch = sample_patch(case, np.random.default_rng(0), (24, 24, 24), lesion_prob=1.0)
    aug = Augmenter(AugmentConfig(p_affine=1.0, p_elastic=0.0, channel_dropout=0.5))
    a, b = aug(patch, 7), aug(patch, 7)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"])
    assert set(np.unique(a["label"])) <= {0, 1}
    assert not np.array_equal(a["image"], aug(patch, 8)["image"])


def test_contrast_augmentation_scales_each_channel_within_its_range() -> None:
    only_contrast = {k: 0.0 for k in ("p_affine", "p_flip", "p_elastic", "p_gamma", "p_bias", "p_noise")}
    only_contrast.update(p_blur=0.0, p_lowres=0.0, channel_dropout=0.0)
    aug = Augmenter(AugmentConfig(**only_contrast, p_contrast=1.0, contrast_range=(0.6, 1.2)))
    image = np.random.default_rng(1).normal(0, 1, (2, 16, 16, 16)).astype(np.float32)
    patch = {"image": image, "label": np.zeros((1, 16, 16, 16), np.uint8), "present": np.ones(2, bool)}
    factors = set()
    for seed in range(20):
        out = aug(patch, seed)["image"]
        f = [float(np.sum(out[c] * image[c]) / np.sum(image[c] ** 2)) for c in range(2)]
        assert np.allclose(out, np.asarray(f, np.float32)[:, None, None, None] * image, atol=1e-5)
        assert all(0.6 - 1e-6 <= x <= 1.2 + 1e-6 for x in f)
        factors.update(round(x, 4) for x in f)
    assert len(factors) > 20  # drawn per channel and per call
    with pytest.raises(ValueError, match="contrast_range"):
        AugmentConfig(contrast_range=(1.2, 0.6))


def test_channel_dropout_keeps_one() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert channel_dropout(np.array([True, True, False]), 0.9, rng).sum() >= 1


def test_kfold_is_patient_wise_and_stratified() -> None:
    names = [f"p{i}" for i in range(30)]
    counts = [0] * 10 + [3] * 10 + [30] * 10
    vols = [0.0] * 10 + [1.0] * 10 + [20.0] * 10
    folds = kfold_split(names, counts, vols, k=5, seed=1)
    assert sorted(n for members in folds.values() for n in members) == sorted(names)
    for members in folds.values():
        heavy = sum(counts[names.index(n)] == 30 for n in members)
        assert heavy == 2
    with pytest.raises(InputError, match="folds"):
        kfold_split(names[:3], counts[:3], vols[:3], k=5)


def test_channel_dropout_never_drops_the_kept_channels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        kept = channel_dropout(np.array([True, True, True]), 1.0, rng, keep_first=1)
        assert kept.tolist() == [True, False, False]


def test_channel_dropout_keeps_one_of_the_alternatives() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        kept = channel_dropout(np.array([True, True, True]), 0.9, rng, one_of_first=2)
        assert kept[:2].sum() >= 1
    # a case holding only the second alternative keeps it
    for _ in range(20):
        kept = channel_dropout(np.array([False, True, True]), 1.0, rng, one_of_first=2)
        assert kept.tolist() == [False, True, False]
    # none of the alternatives present: any present channel survives
    assert channel_dropout(np.array([False, False, True]), 1.0, rng, one_of_first=2).tolist() == [
        False,
        False,
        True,
    ]


def test_hard_negatives_lie_on_the_brain_border_with_the_named_anatomy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[2:18, 2:18, 2:18] = 1
    anatomy = np.full(mask.shape, 2, np.uint8)  # white matter
    anatomy[8:12, 8:12, 8:12] = 7  # a ventricle in the middle
    write_nifti(tmp_path / "c1" / "brain_mask.nii.gz", mask)
    write_nifti(tmp_path / "c1" / "anatomy.nii.gz", anatomy)
    write_nifti(tmp_path / "c1" / "flair.nii.gz", rng.normal(100, 10, mask.shape).astype(np.float32))
    assert load_case_folder(tmp_path / "c1", ("flair",), ("wmh",)).negatives.size == 0
    case = load_case_folder(tmp_path / "c1", ("flair",), ("wmh",), negative_codes=(7,))
    xyz = np.stack(np.unravel_index(case.negatives, mask.shape), axis=1)
    assert ((xyz >= 6) & (xyz < 14)).all() and not ((xyz >= 8) & (xyz < 12)).all(axis=1).any()
    # every centre on a hard negative: the patch's central voxel is one of them
    marker = np.zeros((1, *mask.shape), np.float32)
    marker[0].flat[case.negatives] = 1.0
    marked = replace(case, image=marker)
    for seed in range(20):
        patch = sample_patch(
            marked, np.random.default_rng(seed), (4, 4, 4), lesion_prob=0.0, negative_prob=1.0
        )
        assert patch["image"][0, 2, 2, 2] == 1.0


def test_hard_negatives_fill_the_regions_named_inside(tmp_path: Path) -> None:
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[2:18, 2:18, 2:18] = 1
    anatomy = np.full(mask.shape, 2, np.uint8)
    anatomy[8:12, 8:12, 8:12] = 7  # a ventricle: its outer border
    anatomy[2:6, 2:18, 2:6] = 10  # cerebellar cortex: all of it
    write_nifti(tmp_path / "c1" / "brain_mask.nii.gz", mask)
    write_nifti(tmp_path / "c1" / "anatomy.nii.gz", anatomy)
    flair = np.random.default_rng(0).normal(100, 10, mask.shape).astype(np.float32)
    write_nifti(tmp_path / "c1" / "flair.nii.gz", flair)
    only_inside = load_case_folder(tmp_path / "c1", ("flair",), ("wmh",), negative_inside_codes=(10,))
    assert np.array_equal(np.sort(only_inside.negatives), np.flatnonzero(anatomy == 10))
    both = load_case_folder(
        tmp_path / "c1", ("flair",), ("wmh",), negative_codes=(7,), negative_inside_codes=(10,)
    )
    hard = np.zeros(mask.size, bool)
    hard[both.negatives] = True
    hard = hard.reshape(mask.shape)
    assert hard[anatomy == 10].all() and not hard[anatomy == 7].any()
    assert hard[7, 10, 10] and not hard[14, 14, 14]
