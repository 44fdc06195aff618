"""Atlas registration on analytic phantoms: a moved, scaled, obliquely sampled head keeps its anatomy."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.analysis.regions import MniAtlas, atlas_to_case
from neurolesion.anatomy.labels import Lobe, Side
from neurolesion.errors import InputError
from neurolesion.volume import Volume
from tests.analysis.phantoms import grid_affine, head_phantom, rotation, world_coordinates


@pytest.fixture(scope="module")
def atlas() -> MniAtlas:
    shape = (80, 96, 80)
    aff = grid_affine(np.eye(3) * 2.0, shape, np.array([0.0, 0.0, -10.0]))
    maps = head_phantom(world_coordinates(shape, aff))
    return MniAtlas(
        Volume(maps["t1"], aff, name="phantom template"),
        maps["tissue"],
        maps["region"],
        maps["lobe"],
        maps["side"],
        aff,
    )


def _case(linear: np.ndarray, shape: tuple[int, int, int]) -> tuple[Volume, dict[str, np.ndarray]]:
    """The phantom scaled by 1.08, turned 8 degrees and shifted, sampled on the grid `linear`."""
    move = rotation(2, 8) * 1.08
    shift = np.array([6.0, -4.0, 3.0])
    aff = grid_affine(linear, shape, shift)
    mm = world_coordinates(shape, aff)
    mni = np.tensordot(np.linalg.inv(move), mm - shift[:, None, None, None], axes=1)
    truth = head_phantom(mni)
    flair_like = np.where(truth["t1"] > 0, 1.0 - truth["t1"], 0.0)  # another contrast: inverted
    return Volume(flair_like.astype(np.float32), aff, name="phantom case"), truth


@pytest.mark.parametrize(
    "linear,shape",
    [
        (np.diag([1.8, 1.8, 4.0]), (96, 112, 44)),
        (
            rotation(0, 20) @ np.diag([-2.2, 2.2, 3.0])[:, [1, 0, 2]],
            (100, 84, 60),
        ),  # oblique, flipped, permuted
    ],
)
def test_atlas_lands_on_the_moved_phantom(
    atlas: MniAtlas, linear: np.ndarray, shape: tuple[int, int, int]
) -> None:
    case, truth = _case(linear, shape)
    brain = truth["t1"] > 0
    anat = atlas_to_case(case, brain, atlas=atlas, deformable=False)
    assert anat.shape == case.shape and np.allclose(anat.affine, case.affine)
    assert anat.quality["brain_dice"] > 0.9 and anat.warnings == ()
    both = (truth["side"] > 0) & (anat.side > 0)  # the warped head's rim may fall just outside
    assert both.sum() > 0.9 * (truth["side"] > 0).sum()
    assert np.mean(anat.side[both] == truth["side"][both]) > 0.95
    left = both & (truth["side"] == Side.LEFT)
    assert np.mean(anat.side[left] == Side.LEFT) > 0.95
    lobed = (truth["lobe"] > 0) & (anat.lobe > 0)
    assert np.mean(anat.lobe[lobed] == truth["lobe"][lobed]) > 0.9
    assert (anat.lobe[truth["lobe"] == Lobe.BRAINSTEM] == Lobe.BRAINSTEM).mean() > 0.6
    assert anat.figure is not None and anat.figure.ndim == 3 and anat.figure.dtype == np.uint8


def test_deformable_stage_and_poor_registration_warning(atlas: MniAtlas) -> None:
    case, truth = _case(np.diag([2.0, 2.0, 3.0]), (88, 100, 52))
    anat = atlas_to_case(case, truth["t1"] > 0, atlas=atlas)
    assert isinstance(anat.quality["deformable"], bool) and anat.quality["brain_dice"] > 0.9
    wrong = np.zeros(case.shape, bool)
    wrong[:20, :20, :10] = True  # a "brain mask" that is nowhere near the brain
    poor = atlas_to_case(case, wrong, atlas=atlas, deformable=False)
    assert any("poor" in w or "failed" in w for w in poor.warnings)
    unmasked = atlas_to_case(case, None, atlas=atlas, deformable=False)
    assert any("no brain mask" in w for w in unmasked.warnings)


def test_bad_brain_mask(atlas: MniAtlas) -> None:
    case, _ = _case(np.diag([2.0, 2.0, 3.0]), (88, 100, 52))
    with pytest.raises(InputError, match="brain mask shape"):
        atlas_to_case(case, np.ones((3, 3, 3), bool), atlas=atlas)
    with pytest.raises(InputError, match="empty"):
        atlas_to_case(case, np.zeros(case.shape, bool), atlas=atlas)
