"""Intensity normalisation: percentile clipping and z-score inside the brain."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.preprocess.normalize import (
    NORMALISATIONS,
    clip_percentiles,
    median_scale,
    normaliser,
    normalize,
    parenchyma,
    statistics_mask,
    zscore,
    zscore_unclipped,
)
from neurolesion.volume import Volume


def test_zscore_inside_mask(head: Volume) -> None:
    brain = head.meta["brain"]
    z = normalize(head, brain)
    assert z.array.dtype == np.float32
    assert abs(float(z.data[brain].mean())) < 1e-5
    assert abs(float(z.data[brain].std()) - 1) < 1e-4
    assert z.same_grid(head)


def test_clip_percentiles_limits_outliers() -> None:
    array = np.random.default_rng(0).normal(0, 1, (20, 20, 20))
    array[0, 0, 0] = 1e6
    clipped = clip_percentiles(Volume(array, np.eye(4)))
    assert clipped.data.max() < 4
    assert clipped.data.max() == pytest.approx(np.percentile(array, 99.5), rel=1e-5)


def test_unclipped_zscore_keeps_a_small_bright_lesion_above_the_brightest_normal_tissue() -> None:
    rng = np.random.default_rng(1)
    brain = np.zeros((40, 40, 40), bool)
    brain[4:36, 4:36, 4:36] = True
    array = rng.normal(100, 10, brain.shape)
    lesion = np.zeros(brain.shape, bool)
    lesion[10:12, 10:12, 10:12] = True  # 8 voxels, 10 SDs above the brain
    array[lesion] = 200.0
    image = Volume(array, np.eye(4))
    clipped, unclipped = normalize(image, brain).data, zscore_unclipped(image, brain).data
    brightest_normal = np.percentile(clipped[brain & ~lesion], 99.9)
    assert clipped[lesion].mean() <= brightest_normal + 1e-4  # clipping flattens it onto normal tissue
    assert unclipped[lesion].min() > 8.0
    inside = brain & (clipped > clipped[brain].min()) & (clipped < clipped[brain].max())
    np.testing.assert_allclose(unclipped[inside], clipped[inside], atol=1e-4)  # same scale elsewhere
    array[0, 0, 0] = 1e9  # an outlier outside the brain stays bounded
    assert zscore_unclipped(Volume(array, np.eye(4)), brain).data.max() == pytest.approx(30.0)
    assert normaliser("zscore-brain-unclipped") is zscore_unclipped
    with pytest.raises(InputError, match="intensity is constant"):
        zscore_unclipped(image.with_array(np.ones(brain.shape)), brain)


def test_empty_mask_and_constant_brain_are_input_errors(head: Volume) -> None:
    with pytest.raises(InputError, match=r"head.nii.gz: the brain mask is empty"):
        normalize(head, np.zeros(head.shape, bool))
    flat = head.with_array(np.ones(head.shape))
    with pytest.raises(InputError, match=r"head.nii.gz: intensity is constant"):
        zscore(flat, head.meta["brain"])
    with pytest.raises(ValueError, match="mask shape"):
        zscore(head, np.ones((2, 2, 2), bool))


def test_normaliser_names_the_source_and_the_known_names() -> None:
    assert normaliser("percentile-nonzero") is NORMALISATIONS["percentile-nonzero"]
    with pytest.raises(
        InputError,
        match=r"m\.pt: normalisation 'minmax' unknown; expected one of \['median-brain', 'percentile",
    ):
        normaliser("minmax", "m.pt")


def test_median_scale_keeps_a_lesion_where_a_wider_brain_compresses_its_z_score() -> None:
    rng = np.random.default_rng(0)
    tissue = rng.normal(100.0, 5.0, (20, 20, 20))
    tissue[:5] = 160.0  # a bright structure that widens the brain's spread
    narrow, wide = tissue.copy(), tissue.copy()
    wide[:5] = 220.0
    for img in (narrow, wide):
        img[10, 10, 10] = 130.0  # the lesion, 30 % above the median tissue
    z = [zscore(Volume(a, np.eye(4))).data[10, 10, 10] for a in (narrow, wide)]
    m = [median_scale(Volume(a, np.eye(4)), percentiles=(0, 100)).data[10, 10, 10] for a in (narrow, wide)]
    assert z[1] < 0.7 * z[0]
    assert m[0] == pytest.approx(m[1], abs=0.01)
    assert m[0] == pytest.approx((130.0 / np.median(narrow) - 1) / 0.2, abs=0.01)
    scaled = median_scale(Volume(3.0 * wide, np.eye(4)), percentiles=(0, 100)).data
    assert np.allclose(scaled, median_scale(Volume(wide, np.eye(4)), percentiles=(0, 100)).data, atol=1e-5)
    assert NORMALISATIONS["median-brain"] is median_scale


def test_median_scale_refuses_an_image_without_positive_median() -> None:
    v = Volume(np.zeros((4, 4, 4)) - 1.0, np.eye(4), name="t1.nii.gz")
    with pytest.raises(InputError, match="t1.nii.gz: median intensity -1"):
        median_scale(v)


def _brain_with_csf() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """A ball of tissue in a shell of CSF: bright on T2, dark on FLAIR and T1."""
    rng = np.random.default_rng(0)
    x, y, z = np.ogrid[:40, :40, :40]
    r = np.sqrt((x - 20.0) ** 2 + (y - 20.0) ** 2 + (z - 20.0) ** 2)
    brain, csf = r < 18, (r >= 15) & (r < 18)
    grey = brain & ~csf & (x < 20)

    def image(tissue: float, grey_value: float, fluid: float) -> np.ndarray:
        a = np.where(csf, fluid, np.where(grey, grey_value, tissue)) + rng.normal(0, 3, r.shape)
        return np.where(brain, a, 0.0)

    return {"t2": image(100, 120, 400), "flair": image(100, 110, 20), "t1": image(100, 80, 30)}, brain, csf


def test_parenchyma_is_the_brain_less_its_csf_from_the_first_sequence_that_shows_it() -> None:
    images, brain, csf = _brain_with_csf()
    for present in (["t2", "flair", "t1"], ["flair", "t1"], ["t1"]):
        kept = parenchyma({s: images[s] for s in present}, brain)
        assert np.array_equal(kept, brain & ~csf), present
    assert np.array_equal(parenchyma({"swi": images["t2"]}, brain), brain)  # no sequence it trusts for CSF
    flat = {"t2": np.where(brain, 100.0, 0.0)}
    assert np.array_equal(parenchyma(flat, brain), brain)


def test_normalising_over_the_parenchyma_undoes_what_the_csf_in_a_mask_does_to_z_scores() -> None:
    images, brain, _ = _brain_with_csf()
    flair = Volume(images["flair"], np.eye(4))
    lesion_value = 130.0
    over_brain = (lesion_value - images["flair"][brain].mean()) / images["flair"][brain].std()
    tissue = parenchyma(images, brain)
    z = normalize(flair.with_array(np.where(brain, images["flair"], 0.0)), tissue).data
    assert abs(float(z[tissue].mean())) < 1e-3
    over_tissue = (lesion_value - images["flair"][tissue].mean()) / images["flair"][tissue].std()
    assert over_tissue > 2 * over_brain  # the CSF had compressed the lesion's z-score


def test_statistics_mask_keeps_the_ventricles_and_leaves_the_surface_rim_out() -> None:
    x, y, z = np.ogrid[:64, :64, :64]
    r = np.sqrt((x - 32.0) ** 2 + (y - 32.0) ** 2 + (z - 32.0) ** 2)
    brain = r < 30
    tissue = brain & (r > 5) & (r < 27)  # a ventricle at the centre, sulcal CSF at the surface
    mask = statistics_mask(tissue, brain)
    assert mask[r <= 5].all()  # 25-30 mm deep: ventricular CSF, in the training masks too
    assert not mask[(r >= 25.5) & (r < 27)].any()  # the outer 2 mm of the tissue (as the grid allows)
    assert mask[(r > 7) & (r < 24)].all()
    # in millimetres: on a 2 mm grid the same rim is one voxel, and the centre lies 15 voxels but 30 mm deep
    coarse = statistics_mask(tissue[::2, ::2, ::2], brain[::2, ::2, ::2], (2.0, 2.0, 2.0))
    assert coarse[16, 16, 16] and not coarse[16, 16, 29]
    thin = brain & (r > 24) & (r < 27)  # all rim: the tissue itself rather than almost nothing
    assert np.array_equal(statistics_mask(thin, brain), thin)
    with pytest.raises(ValueError, match="differs from the brain mask"):
        statistics_mask(tissue, brain[:10])


def test_statistics_mask_leaves_out_dark_non_brain_voxels_under_the_surface() -> None:
    # a brain-extraction mask that overreaches: a patch of bone 3-5 mm under its surface, dark on every
    # image, not CSF (so in the tissue mask) and deeper than the 2 mm rim
    rng = np.random.default_rng(0)
    x, y, z = np.ogrid[:64, :64, :64]
    r = np.sqrt((x - 32.0) ** 2 + (y - 32.0) ** 2 + (z - 32.0) ** 2)
    brain = r < 30
    bone = brain & (r > 25) & (r < 27) & (x < 32)
    t1 = np.where(brain, 100.0 + rng.normal(0, 5, r.shape), 0.0)
    t1[bone] = 10.0
    t2 = np.where(brain, 80.0 + rng.normal(0, 5, r.shape), 0.0)
    without = statistics_mask(brain, brain)
    assert without[bone].all()  # not CSF, under the rim: in the statistics without the images
    mask = statistics_mask(brain, brain, images={"t1": t1, "t2": t2})
    assert not mask[bone].any()
    tissue_band = brain & (r > 23) & (r < 27) & (x > 34)  # the same depths, brain-like intensities
    assert mask[tissue_band].mean() > 0.95  # the darkest 1 % of a noisy image's band goes too
    assert mask[r < 20].all()  # deeper than the band: untouched
    # a sequence that covers half the brain (0 outside its field of view): its zeros are not dark
    slab = statistics_mask(brain, brain, images={"t2": np.where(x > 32, t2, 0.0)})
    assert slab[without & (x < 30)].all()
    with pytest.raises(ValueError, match="t1: image shape"):
        statistics_mask(brain, brain, images={"t1": t1[:10]})


def test_statistics_mask_narrows_its_rim_on_a_tight_mask_rather_than_dropping_it() -> None:
    # a slab 7 voxels thick: a 2 mm rim leaves 3 of its 7 layers, a 1 mm rim 5
    slab = np.zeros((40, 40, 9), bool)
    slab[2:38, 2:38, 1:8] = True
    mask = statistics_mask(slab, slab)
    assert not mask[20, 20, 1] and not mask[20, 20, 7]  # the outer layers stay out
    assert mask[20, 20, 2:7].all()  # the next ones, 2 mm from the surface, come in
    assert mask.sum() >= 0.5 * slab.sum()
    # the full rim where it leaves half: a thicker slab loses its two outer layers on each side
    thick = np.zeros((40, 40, 13), bool)
    thick[2:38, 2:38, 1:12] = True
    assert statistics_mask(thick, thick)[20, 20].tolist() == [False] * 3 + [True] * 7 + [False] * 3
