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
        assert r.subtype in {"periventricular", "deep"}


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


def _punctate_only(head: Head, count: int) -> LesionSet:
    """Deep grade 1 with no bands, caps or deep patches: every lesion painted is a punctate focus."""
    none = ((0, 0),) * 4
    return wmh.insert(
        head,
        np.random.default_rng(5),
        fazekas_pv=0,
        fazekas_deep=1,
        deep_count=none,
        punctate_count=((0, 0), (count, count), (0, 0), (0, 0)),
    )


def test_wmh_punctate_foci_are_small_discrete_lesions(fresh_head) -> None:
    # 1.5-4 mm drawn (a focus clipped by the white-matter boundary or touching another may come out smaller
    # or larger)
    diameters = [r.extra["diameter_mm"] for r in _punctate_only(fresh_head(), 12).records]
    assert 8 <= len(diameters) <= 12
    assert np.median(diameters) < 4.0 and min(diameters) >= 1.5
    assert not _punctate_only(fresh_head(), 0).records


def test_wmh_punctate_foci_leave_the_other_draws_unchanged(fresh_head) -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    wmh.insert(fresh_head(), rng_a, fazekas_pv=2, fazekas_deep=2)
    wmh.insert(fresh_head(), rng_b, fazekas_pv=2, fazekas_deep=2, punctate_count=((0, 0),) * 4)
    assert rng_a.random() == rng_b.random()  # lesion types painted after WMH see the same stream
