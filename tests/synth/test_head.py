"""Random heads: deterministic per seed, different per seed, atrophy with age, labels stay consistent."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.anatomy.labels import Region, Tissue
from neurolesion.anatomy.template import Anatomy, downsample, load_anatomy
from neurolesion.synth.deform import HeadConfig, interpolation_matrix, random_head, upsample


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
