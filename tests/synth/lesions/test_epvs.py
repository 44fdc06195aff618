import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import epvs
from neurolesion.synth.tissues import LesionTissue
from tests.synth.lesions.checks import check_truth


def test_epvs_exact_thin_and_in_place(head: Head) -> None:
    before = head.labels.copy()
    out = epvs.insert(head, np.random.default_rng(0), bg_grade=3, cso_grade=2)
    check_truth(before, head.labels, out, [LesionTissue.EPVS_FLUID], [LesionTissue.EPVS_FLUID], epvs.BG_UNDER)
    subs = [r.subtype for r in out.records]
    assert subs.count("centrum_semiovale") >= 8 and subs.count("basal_ganglia") >= 5
    for r in out.records:
        assert r.extra["width_mm"] < 3.0 and r.extra["bg_grade"] == 3
        inst = out.instances == r.id
        assert not ndimage.binary_erosion(inst).any(), "an EPVS has an interior voxel (too wide)"
        if r.subtype == "centrum_semiovale":
            assert (before[inst] == Tissue.WM).all()
            assert r.centre_vox[2] > np.argwhere(before == Tissue.VENTRICLE)[:, 2].mean() - 2


def test_epvs_bg_channels_run_vertically(fresh_head) -> None:
    head = fresh_head()
    out = epvs.insert(head, np.random.default_rng(1), bg_grade=4, cso_grade=0, dot_fraction=0.0)
    extents = []
    for r in out.records:
        idx = np.argwhere(out.instances == r.id)
        if len(idx) >= 3:
            extents.append(np.ptp(idx, axis=0))
    ext = np.array(extents)
    assert len(ext) >= 5
    assert np.median(ext[:, 2]) >= np.median(np.maximum(ext[:, 0], ext[:, 1]))


def test_epvs_grade_zero_paints_nothing(head: Head) -> None:
    before = head.labels.copy()
    out = epvs.insert(head, np.random.default_rng(2), bg_grade=0, cso_grade=0)
    assert not out.records
    np.testing.assert_array_equal(before, head.labels)


def test_epvs_rejects_wide_channels(head: Head) -> None:
    with pytest.raises(ValueError, match="width_mm"):
        epvs.insert(head, np.random.default_rng(0), width_mm=(1.0, 4.0))


def test_epvs_follow_the_head_not_the_voxel_axes(head: Head) -> None:
    def swap(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.transpose(2, 1, 0))

    turned = Head(
        labels=swap(head.labels),
        regions=swap(head.regions),
        lobes=swap(head.lobes),
        sides=swap(head.sides),
        affine=head.affine[:, [2, 1, 0, 3]],
        age_factor=head.age_factor,
    )
    out = epvs.insert(turned, np.random.default_rng(1), bg_grade=4, cso_grade=0, dot_fraction=0.0)
    ext = np.array([np.ptp(np.argwhere(out.instances == r.id), axis=0) for r in out.records])
    assert len(ext) >= 5
    assert np.median(ext[:, 0]) >= np.median(np.maximum(ext[:, 1], ext[:, 2]))
