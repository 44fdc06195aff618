import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import PARENCHYMA
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import ccm
from neurolesion.synth.tissues import LesionTissue as LT
from tests.synth.lesions.checks import check_truth

CODES = [LT.CCM_CORE, LT.CCM_RIM, LT.CCM_FLUID]
NO_PUSH = {"mass_effect_min_mm": 1000.0}


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_ccm_types_exact_and_whole(head: Head, kind: int) -> None:
    before = head.labels.copy()
    out = ccm.insert(head, np.random.default_rng(kind), count=4, zabramski=kind, **NO_PUSH)
    check_truth(before, head.labels, out, CODES, CODES, PARENCHYMA)
    assert len(out.records) >= 3
    for r in out.records:
        assert r.type == "ccm" and r.subtype == ccm.TYPES[kind - 1] and r.extra["zabramski"] == kind
        lo, hi = ccm.CCMParams().diameter_mm[kind - 1]
        assert lo <= r.extra["diameter_mm"] <= hi
        inst = out.instances == r.id
        assert ndimage.label(inst, structure=np.ones((3, 3, 3)))[1] == 1
        codes = set(np.unique(head.labels[inst]).tolist())
        if kind == 4:
            assert codes == {LT.CCM_RIM}
        if kind in (1, 2):
            assert LT.CCM_CORE in codes
        if kind in (2, 3):
            assert LT.CCM_RIM in codes


def test_ccm_type_two_has_rim_around_core(head: Head) -> None:
    out = ccm.insert(
        head, np.random.default_rng(9), count=1, zabramski=2, diameter_mm=((5, 40),) * 2 + ((3, 20), (2, 4))
    )
    (r,) = out.records
    inst = out.instances == r.id
    rim = inst & (head.labels == LT.CCM_RIM)
    surface = inst & ~ndimage.binary_erosion(inst)
    assert rim.sum() > 0.5 * surface.sum()


def test_ccm_brainstem_location_recorded(head: Head) -> None:
    out = ccm.insert(head, np.random.default_rng(4), count=5, location_probs=(0.0, 0.0, 1.0, 0.0), **NO_PUSH)
    assert out.records
    for r in out.records:
        assert r.extra["location"] == "brainstem" and r.region == "infratentorial"


def test_ccm_random_cases(fresh_head) -> None:
    counts = []
    for seed in range(6):
        out = ccm.insert(fresh_head(), np.random.default_rng(seed))
        counts.append(len(out.records))
        assert all(r.extra["familial"] == (len(out.records) > 1) for r in out.records) or len(out.records) < 2
    assert all(0 <= c <= 20 for c in counts) and max(counts) >= 1


def test_ccm_rejects_bad_type(head: Head) -> None:
    with pytest.raises(ValueError, match="zabramski=5"):
        ccm.insert(head, np.random.default_rng(0), zabramski=5)
