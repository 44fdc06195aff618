"""Tissue-class intensity randomisation: classes, exact re-standardisation, case loading and augmenting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurolesion.anatomy.labels import Tissue
from neurolesion.errors import InputError
from neurolesion.synth.tissues import LesionTissue
from neurolesion.train.augment import Augmenter
from neurolesion.train.config import AugmentConfig
from neurolesion.train.data import load_case_folder, sample_patch
from neurolesion.train.tissues import class_moments, shift_tissues, tissue_classes
from tests.conftest import write_nifti


def _anatomy() -> np.ndarray:
    """White matter with a cortex slab, a ventricle and a WMH inside the white matter."""
    a = np.full((20, 20, 20), int(Tissue.WM), np.uint8)
    a[:5] = int(Tissue.CORTICAL_GM)
    a[12:16, 12:16, 12:16] = int(Tissue.VENTRICLE)
    a[8:10, 8:10, 8:10] = int(LesionTissue.WMH)
    return a


def test_a_lesion_takes_the_class_of_the_tissue_around_it() -> None:
    classes = tissue_classes(_anatomy())
    wm = classes[10, 2, 2]
    assert classes[8, 8, 8] == wm  # the WMH moves with the white matter
    assert len({int(classes[0, 0, 0]), int(wm), int(classes[13, 13, 13])}) == 3


def test_shift_restandardises_the_whole_brain_and_keeps_lesion_contrast() -> None:
    anatomy = _anatomy()
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 0.2, (1, *anatomy.shape)) + np.where(anatomy == Tissue.CORTICAL_GM, 1.0, 0.0)
    image[0][anatomy == LesionTissue.WMH] += 2.0
    image = ((image - image.mean()) / image.std()).astype(np.float32)  # z-scored over the "brain"
    brain = np.ones(anatomy.shape, bool)
    classes = tissue_classes(anatomy)
    out = shift_tissues(image, classes, class_moments(image, classes, brain), rng, sd=0.8, sigma=0.0)
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1.0) < 1e-4  # exact whole-brain statistics
    lesion, wm = anatomy == LesionTissue.WMH, anatomy == Tissue.WM
    before = image[0][lesion].mean() - image[0][wm].mean()
    after = out[0][lesion].mean() - out[0][wm].mean()
    scale = (out[0][wm].std()) / (image[0][wm].std())  # the global rescaling alone
    assert after == pytest.approx(before * scale, rel=1e-3)
    assert not np.allclose(out, image)


def _case(tmp_path: Path, anatomy: bool = True) -> Path:
    d = tmp_path / "c1"
    a = _anatomy()
    rng = np.random.default_rng(1)
    write_nifti(d / "brain_mask.nii.gz", np.ones(a.shape, np.uint8))
    write_nifti(d / "flair.nii.gz", (100 + 10 * rng.normal(size=a.shape)).astype(np.float32))
    write_nifti(d / "wmh_labels.nii.gz", (a == LesionTissue.WMH).astype(np.uint8))
    if anatomy:
        write_nifti(d / "anatomy.nii.gz", a)
    return d


def test_cases_carry_tissue_into_patches_and_the_augmentation_uses_it(tmp_path: Path) -> None:
    case = load_case_folder(_case(tmp_path), ("flair",), ("wmh",), tissue=True)
    assert case.tissue is not None and case.tissue_moments is not None
    assert case.tissue_moments.shape[:2] == (1, 7)
    patch = sample_patch(case, np.random.default_rng(0), (24, 24, 24), lesion_prob=1.0)  # padded
    assert patch["tissue"].shape == (24, 24, 24)
    plain = AugmentConfig(
        enabled=True,
        p_affine=0,
        p_flip=0,
        p_elastic=0,
        p_gamma=0,
        p_bias=0,
        p_noise=0,
        p_blur=0,
        p_lowres=0,
        channel_dropout=0,
    )
    unchanged = Augmenter(plain)(patch, seed=3)["image"]
    assert np.array_equal(unchanged, patch["image"])  # p_tissue 0: as before
    shifted = Augmenter(replace(plain, p_tissue=1.0))(patch, seed=3)["image"]
    assert not np.allclose(shifted, patch["image"])
    assert load_case_folder(tmp_path / "c1", ("flair",), ("wmh",)).tissue is None  # only when asked


def test_tissue_needs_the_anatomy_map_and_a_sane_shift(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="anatomy.nii.gz"):
        load_case_folder(_case(tmp_path, anatomy=False), ("flair",), ("wmh",), tissue=True)
    with pytest.raises(ValueError, match="tissue_shift"):
        AugmentConfig(tissue_shift=5.0)
