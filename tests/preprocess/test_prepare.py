"""prepare(): one model grid, brain mask, z-scores, and an exact way back to the native grid."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.io.case import Case
from neurolesion.preprocess.brain import register_brain_method
from neurolesion.preprocess.orientation import reorient
from neurolesion.preprocess.prepare import brain_masks, prepare
from neurolesion.preprocess.resample import Grid, resample
from neurolesion.volume import Volume

from .conftest import make_head

HEAD = make_head()


@register_brain_method("test-phantom")
def _truth(images: dict[str, Volume]) -> np.ndarray:
    """The phantom's own brain carried to the images' grid (no need for deepbet here)."""
    brain = Volume(HEAD.meta["brain"].astype(np.float32), HEAD.affine)
    return resample(brain, Grid.of(next(iter(images.values()))), order="linear").data


def _case() -> Case:
    flair = reorient(Volume(HEAD.array, HEAD.affine, "flair.nii.gz"), ("L", "P", "S"))  # as scanners store it
    t1 = Volume(np.where(HEAD.meta["brain"], 300 - HEAD.data, HEAD.data), HEAD.affine, "t1.nii.gz")
    return Case({"flair": flair, "t1": t1}, reference="flair")


def test_prepare_grid_images_mask_and_way_back() -> None:
    case = _case()
    prepared = prepare(case, spacing=(1.0, 1.0, 1.0), brain="test-phantom")
    assert prepared.grid.shape == (79, 87, 71)
    assert np.allclose(np.diag(prepared.grid.affine)[:3], 1.0)  # RAS, 1 mm
    assert set(prepared.images) == {"flair", "t1"}
    for image in prepared.images.values():
        assert image.shape == prepared.grid.shape and image.dtype == np.float32
        assert abs(float(image[prepared.statistics].mean())) < 1e-3
    assert not (prepared.statistics & ~prepared.brain_mask).any()
    assert prepared.registration["t1"].rotation_deg < 1.0
    assert {"bias", "register", "brain", "normalize"} <= set(prepared.timings)
    # back to the reference's native grid (LPS, 2 mm): exact shape and orientation
    native_mask = prepared.native_brain_mask()
    flair = case.images["flair"]
    assert native_mask.shape == flair.shape
    expected = reorient(Volume(HEAD.meta["brain"].astype(np.float32), HEAD.affine), ("L", "P", "S")).data > 0
    assert np.array_equal(native_mask, expected)
    native_tissue = prepared.native_tissue_mask()  # the same way back, inside the brain
    assert native_tissue.shape == flair.shape and native_tissue.any()
    assert not (native_tissue & ~native_mask).any()
    # any native array sent to the model grid comes back to the voxel (nested grids)
    values = np.random.default_rng(0).random(flair.shape).astype(np.float32)
    on_model = resample(reorient(flair.with_array(values)), prepared.grid, extend_edges=True).data
    np.testing.assert_allclose(prepared.to_native(on_model), values, atol=1e-5)
    labels = (values > 0.7).astype(np.float32) * 3
    on_model = resample(reorient(flair.with_array(labels)), prepared.grid, order="nearest").data
    assert np.array_equal(prepared.to_native(on_model, order="nearest"), labels)


def test_images_under_a_model_cards_normalisation() -> None:
    prepared = prepare(_case(), spacing=(1.0, 1.0, 1.0), brain="test-phantom")
    assert prepared.normalised("zscore-brain") is prepared.images
    median = prepared.normalised("median-brain")
    assert set(median) == {"flair", "t1"}
    for seq, image in median.items():
        assert image.shape == prepared.grid.shape and image.dtype == np.float32
        assert abs(float(np.median(image[prepared.statistics]))) < 1e-3
        assert np.corrcoef(image[prepared.brain_mask], prepared.images[seq][prepared.brain_mask])[0, 1] > 0.99
    # only a model's inputs are normalised; a sequence the case lacks is left out
    flair_only = prepared.normalised("median-brain", sequences=["flair", "t2"])
    assert set(flair_only) == {"flair"}
    np.testing.assert_array_equal(flair_only["flair"], median["flair"])
    assert prepared.normalised("zscore-brain", sequences=["t1"])["t1"] is prepared.images["t1"]
    over_brain = prepared.normalised("zscore-brain", prepared.brain_mask)  # statistics from another mask
    assert abs(float(over_brain["flair"][prepared.brain_mask].mean())) < 1e-3
    with pytest.raises(InputError, match="normalisation 'minmax' unknown"):
        prepared.normalised("minmax")


@pytest.mark.parametrize(
    ("array", "affine", "message"),
    [
        (np.full((8, 8, 8), np.nan), np.eye(4), "t1.nii.gz: 512 voxels are NaN or Inf"),
        (np.full((8, 8, 8), 3.0), np.eye(4), "t1.nii.gz: image is constant"),
        (np.ones((8, 8, 8)), np.diag([1.0, 1.0, 40.0, 1.0]), "t1.nii.gz: voxel size"),
        (
            np.ones((8, 8, 8)),
            np.array([[1, 0.4, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            "orthonormal",
        ),
    ],
)
def test_bad_input_is_an_input_error(array: np.ndarray, affine: np.ndarray, message: str) -> None:
    array = array.copy()
    if np.isfinite(array).all() and "constant" not in message:
        array[0, 0, 0] = 2.0
    case = Case({"flair": make_head(), "t1": Volume(array, affine, "t1.nii.gz")}, reference="flair")
    with pytest.raises(InputError, match=message):
        prepare(case, brain="test-phantom")


def test_prepare_without_bias_and_registration_trusts_the_scanner() -> None:
    prepared = prepare(
        _case(), spacing=(2.0, 2.0, 2.0), bias_correct=False, register=False, brain="test-phantom"
    )
    assert prepared.grid.shape == HEAD.shape
    assert np.array_equal(prepared.registration["t1"].matrix, np.eye(4))
    assert "bias" not in prepared.timings and "register" not in prepared.timings
    labels = prepared.to_native(prepared.brain_mask.astype(np.float32) * 2, order="label")
    assert set(np.unique(labels)) == {0.0, 2.0}


def test_brain_masks_leave_the_csf_out_of_the_statistics() -> None:
    # A skull-stripped FLAIR: tissue about 100, a CSF cube about 20, nothing outside the brain.
    rng = np.random.default_rng(3)
    flair = np.zeros((28, 28, 28), np.float32)
    flair[2:26, 2:26, 2:26] = rng.normal(100, 5, (24, 24, 24))
    flair[4:10, 4:10, 4:10] = rng.normal(20, 2, (6, 6, 6))
    flair[16:20, 16:20, 16:20] = rng.normal(160, 5, (4, 4, 4))  # a bright lesion stays in all three
    brain, tissue, statistics = brain_masks({"flair": Volume(flair, np.eye(4))}, "nonzero")
    assert brain.sum() == 24**3
    assert not tissue[4:10, 4:10, 4:10].any() and tissue.sum() == 24**3 - 6**3
    assert not (statistics & ~tissue).any() and statistics[16:20, 16:20, 16:20].all()
    assert not statistics[2:4].any() and not statistics[11, 6, 6]  # the rim against the outside and the CSF
    # a brain mask extracted before: only the other two are derived, the same way
    again = brain_masks({"flair": Volume(flair, np.eye(4))}, "no-such-method", brain=brain)
    assert all(np.array_equal(a, b) for a, b in zip(again, (brain, tissue, statistics), strict=True))
    with pytest.raises(ValueError, match=r"brain mask shape \(4, 4, 4\) differs from the images' grid"):
        brain_masks({"flair": Volume(flair, np.eye(4))}, brain=np.ones((4, 4, 4), bool))
