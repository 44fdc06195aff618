import numpy as np
import pytest

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import wmh
from neurolesion.synth.lesions.base import LesionSet
from neurolesion.synth.tissues import LesionTissue
from tests.synth.lesions.checks import check_truth


@pytest.mark.parametrize("grade", [0, 1, 2, 3])
def test_wmh_only_in_white_matter_and_exact(head: Head, grade: int) -> None:
    before = head.labels.copy()
    out = wmh.insert(
        head,
        np.random.default_rng(grade),
        fazekas_pv=grade,
        fazekas_deep=grade,
        pons_probability=(0, 0, 0, 0),
    )
    check_truth(before, head.labels, out, [LesionTissue.WMH], [LesionTissue.WMH], [Tissue.WM])
    assert out.task == "wmh"
    if grade == 0:
        assert not out.records
    for r in out.records:
        assert r.type == "wmh" and r.extra["fazekas_pv"] == grade
        assert r.subtype in {"periventricular", "juxtacortical", "deep"}


def test_wmh_load_grows_with_grade(fresh_head) -> None:
    loads = []
    for g in (1, 2, 3):
        out = wmh.insert(fresh_head(), np.random.default_rng(7), fazekas_pv=g, fazekas_deep=g)
        loads.append(sum(r.volume_ml for r in out.records))
    assert loads[0] < loads[1] < loads[2]
    assert loads[2] > 20


def test_wmh_periventricular_touches_ventricles(head: Head) -> None:
    out = wmh.insert(head, np.random.default_rng(1), fazekas_pv=3, fazekas_deep=0)
    pv = [r for r in out.records if r.subtype == "periventricular"]
    assert pv and max(r.volume_ml for r in pv) > 5


def test_wmh_pons_when_forced(head: Head) -> None:
    before = head.labels.copy()
    out = wmh.insert(
        head, np.random.default_rng(3), fazekas_pv=2, fazekas_deep=2, pons_probability=(1, 1, 1, 1)
    )
    infra = [r for r in out.records if r.subtype == "infratentorial"]
    assert infra and all(r.region == "infratentorial" for r in infra)
    check_truth(
        before, head.labels, out, [LesionTissue.WMH], [LesionTissue.WMH], [Tissue.WM, Tissue.BRAINSTEM]
    )


def test_wmh_rejects_bad_grade(head: Head) -> None:
    with pytest.raises(ValueError, match="fazekas_pv=5"):
        wmh.insert(head, np.random.default_rng(0), fazekas_pv=5)


def _foci_only(head: Head, kind: str, count: int, **params: object) -> LesionSet:
    """Deep grade 1 with no bands, caps or deep patches: every lesion painted is a `kind` focus
    (punctate or juxtacortical)."""
    none = ((0, 0),) * 4
    counts = {"punctate_count": none, "juxtacortical_count": none}
    counts[f"{kind}_count"] = ((0, 0), (count, count), (0, 0), (0, 0))
    return wmh.insert(
        head, np.random.default_rng(5), fazekas_pv=0, fazekas_deep=1, deep_count=none, **counts, **params
    )


def test_wmh_punctate_foci_are_small_discrete_lesions(fresh_head) -> None:
    # 1.5-4 mm drawn (a focus clipped by the white-matter boundary or touching another may come out smaller
    # or larger)
    diameters = [r.extra["diameter_mm"] for r in _foci_only(fresh_head(), "punctate", 12).records]
    assert 8 <= len(diameters) <= 12
    assert np.median(diameters) < 4.0 and min(diameters) >= 1.5
    assert not _foci_only(fresh_head(), "punctate", 0).records


def test_wmh_punctate_foci_leave_the_other_draws_unchanged(fresh_head) -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    wmh.insert(fresh_head(), rng_a, fazekas_pv=2, fazekas_deep=2)
    wmh.insert(fresh_head(), rng_b, fazekas_pv=2, fazekas_deep=2, punctate_count=((0, 0),) * 4)
    assert rng_a.random() == rng_b.random()  # lesion types painted after WMH see the same stream


def test_wmh_juxtacortical_foci_border_the_cortex(fresh_head) -> None:
    from scipy import ndimage

    head = fresh_head()
    cortex = head.labels == Tissue.CORTICAL_GM
    wm = head.labels == Tissue.WM
    before = head.labels.copy()
    out = _foci_only(head, "juxtacortical", 10, cortical_reach_mm=2.0)
    assert 5 <= len(out.records) <= 10
    subtypes = [r.subtype for r in out.records]  # where white matter is thin, a focus may reach a ventricle
    assert "deep" not in subtypes and subtypes.count("juxtacortical") >= len(subtypes) / 2
    near_cortex = ndimage.binary_dilation(cortex, np.ones((3, 3, 3), bool))
    for idx in range(1, int(out.instances.max()) + 1):
        lesion = out.instances == idx
        assert (lesion & near_cortex).any()  # every one touches the cortex
    painted = out.instances > 0
    assert set(np.unique(before[painted])) <= {Tissue.WM, Tissue.CORTICAL_GM}
    # into the cortex, but only as deep as cortical_reach_mm (one voxel layer on this 2 mm head)
    assert (painted & cortex).any()
    reach = ndimage.binary_dilation(wm, np.ones((3, 3, 3), bool))
    assert not (painted & cortex & ~reach).any()
    assert (head.labels[painted] == LesionTissue.WMH).all()


def test_wmh_juxtacortical_foci_leave_the_other_lesions_unchanged(fresh_head) -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    a = wmh.insert(fresh_head(), rng_a, fazekas_pv=2, fazekas_deep=2)
    b = wmh.insert(
        fresh_head(),
        rng_b,
        fazekas_pv=2,
        fazekas_deep=2,
        juxtacortical_count=((0, 0), (4, 4), (6, 6), (8, 8)),
    )
    assert rng_a.random() == rng_b.random()
    assert ((a.instances > 0) <= (b.instances > 0)).all()  # the same lesions plus the new foci
    assert (b.instances > 0).sum() > (a.instances > 0).sum()
