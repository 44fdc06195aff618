"""Random heads: deterministic per seed, different per seed, atrophy with age, labels stay consistent."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.anatomy.labels import Region, Side, Tissue
from neurolesion.anatomy.template import Anatomy, downsample, load_anatomy
from neurolesion.errors import InputError
from neurolesion.synth.deform import (
    HeadConfig,
    enlarge_ventricles,
    interpolation_matrix,
    random_head,
    upsample,
)

#: No affine, no warp: the head stays on the template's midline (x = 0 mm), so mirroring is meaningful.
STILL = {"rotation_deg": 0, "scaling": (1, 1), "head_size": (1, 1), "shift_mm": 0, "warp_mm": 0}
SYMMETRIC = {"petalia_mm": (0.0, 0.0), "hemisphere_scale": 0.0, "ventricle_asymmetry": 0.0}


@pytest.fixture(scope="module")
def anat2() -> Anatomy:
    return downsample(load_anatomy(), 2)


def test_same_seed_same_head_other_seed_other_head(anat2: Anatomy) -> None:
    a = random_head(anat2, np.random.default_rng(1), HeadConfig())
    b = random_head(anat2, np.random.default_rng(1), HeadConfig())
    c = random_head(anat2, np.random.default_rng(2), HeadConfig())
    assert np.array_equal(a.labels, b.labels) and a.age_factor == b.age_factor
    assert (a.labels != c.labels).mean() > 0.05
    assert a.labels.shape == anat2.shape and np.allclose(a.affine, anat2.affine)


def test_old_heads_have_larger_ventricles(anat2: Anatomy) -> None:
    no_warp = HeadConfig(rotation_deg=0, scaling=(1, 1), head_size=(1, 1), shift_mm=0, warp_mm=0)
    young = random_head(anat2, np.random.default_rng(3), no_warp, age_factor=0.0)
    old = random_head(anat2, np.random.default_rng(3), no_warp, age_factor=1.0)
    assert (old.labels == Tissue.VENTRICLE).sum() > 1.5 * (young.labels == Tissue.VENTRICLE).sum()
    assert (old.labels == Tissue.CSF).sum() > (young.labels == Tissue.CSF).sum()
    assert np.array_equal(young.labels, anat2.labels)


def test_labels_regions_move_together(anat2: Anatomy) -> None:
    head = random_head(anat2, np.random.default_rng(4), HeadConfig())
    infra = head.regions == Region.INFRATENTORIAL
    assert np.isin(head.labels[infra], [Tissue.BRAINSTEM, Tissue.CEREBELLAR_GM, Tissue.CEREBELLAR_WM]).all()
    assert (head.regions[head.labels == Tissue.VENTRICLE] == 0).all()
    assert head.brain_mask().sum() > 0.5 * np.isin(anat2.labels, [Tissue.WM, Tissue.CORTICAL_GM]).sum()


def test_upsample_matches_linear_interpolation() -> None:
    w = interpolation_matrix(3, 6, order=1)
    assert np.allclose(w.sum(axis=1), 1.0)
    ramp = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 3, 3), np.float32)
    out = upsample(ramp, (6, 4, 5), order=1)
    assert out.shape == (6, 4, 5)
    assert np.all(np.diff(out[:, 0, 0]) >= 0) and np.allclose(out[:, 0, 0], out[:, 3, 4])


def mirrored(labels: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """`labels` flipped about x = 0 mm (axis 0 of an axis-aligned RAS grid)."""
    x = affine[0, 0] * np.arange(labels.shape[0]) + affine[0, 3]
    src = np.rint((-x - affine[0, 3]) / affine[0, 0]).astype(int)
    inside = (src >= 0) & (src < labels.shape[0])
    out = np.zeros_like(labels)
    out[inside] = labels[src[inside]]
    return out


def mirror_dice(labels: np.ndarray, affine: np.ndarray, code: int) -> float:
    a, b = labels == code, mirrored(labels, affine) == code
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_heads_are_not_mirror_symmetric(anat2: Anatomy) -> None:
    sym = random_head(anat2, np.random.default_rng(5), HeadConfig(**STILL, **SYMMETRIC), age_factor=0.0)
    torque = HeadConfig(**STILL, petalia_mm=(4.0, 4.0))
    asym = random_head(anat2, np.random.default_rng(5), torque, age_factor=0.0)
    assert mirror_dice(sym.labels, sym.affine, Tissue.WM) > 0.99  # the template itself is symmetric
    assert mirror_dice(asym.labels, asym.affine, Tissue.WM) < 0.9
    assert asym.asymmetry["petalia_mm"] == 4.0 and sym.asymmetry["petalia_mm"] == 0.0
    # positive petalia: the right hemisphere sits forward of the left (right frontal, left occipital)
    gm = np.argwhere(asym.labels == Tissue.CORTICAL_GM) * 2.0 + asym.affine[:3, 3]
    right, left = gm[gm[:, 0] > 4], gm[gm[:, 0] < -4]
    assert right[:, 1].mean() - left[:, 1].mean() == pytest.approx(4.0, abs=1.5)


def test_ventricles_enlarge_more_on_one_side(anat2: Anatomy) -> None:
    def growth(lateral: float) -> tuple[int, int]:
        labels = anat2.labels.copy()
        enlarge_ventricles(labels, np.random.default_rng(0), 3.0, lateral=lateral, affine=anat2.affine)
        grown = (labels == Tissue.VENTRICLE) & (anat2.labels != Tissue.VENTRICLE)
        return int((grown & (anat2.sides == Side.LEFT)).sum()), int(
            (grown & (anat2.sides == Side.RIGHT)).sum()
        )

    left, right = growth(0.6)
    assert left > 1.5 * right
    left, right = growth(-0.6)
    assert right > 1.5 * left


def test_head_config_is_validated() -> None:
    with pytest.raises(InputError, match="petalia_mm"):
        HeadConfig(petalia_mm=(3.0, -3.0))
    with pytest.raises(InputError, match="ventricle_asymmetry"):
        HeadConfig(ventricle_asymmetry=1.5)
