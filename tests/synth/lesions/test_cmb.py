import numpy as np
import pytest

from neurolesion.anatomy.labels import PARENCHYMA
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import cmb
from neurolesion.synth.tissues import LesionTissue
from tests.synth.lesions.checks import check_truth


@pytest.mark.parametrize("pattern", ["lobar", "deep", "mixed"])
def test_cmb_exact_and_in_parenchyma(head: Head, pattern: str) -> None:
    before = head.labels.copy()
    out = cmb.insert(head, np.random.default_rng(1), count=20, pattern=pattern)
    check_truth(before, head.labels, out, [LesionTissue.CMB], [LesionTissue.CMB], PARENCHYMA)
    assert 15 <= len(out.records) <= 20
    for r in out.records:
        assert r.type == "cmb" and 2.0 <= r.extra["diameter_mm"] <= 10.0
        assert r.subtype in cmb.LOCATIONS and r.extra["pattern"] == pattern
        assert r.volume_ml * 1000 <= 4 / 3 * np.pi * (r.extra["diameter_mm"] / 2 + 2 * np.sqrt(3)) ** 3


def test_cmb_location_matches_region(head: Head) -> None:
    out = cmb.insert(head, np.random.default_rng(2), count=30, pattern="mixed")
    agree = [r.subtype == r.region for r in out.records]
    assert sum(agree) >= 0.8 * len(agree)
    assert {r.subtype for r in out.records} == set(cmb.LOCATIONS)


def test_cmb_random_count_in_range(fresh_head) -> None:
    counts = [len(cmb.insert(fresh_head(), np.random.default_rng(s)).records) for s in range(8)]
    assert all(0 <= c <= 30 for c in counts)
    assert min(counts) < max(counts)


def test_cmb_rejects_too_many(head: Head) -> None:
    with pytest.raises(ValueError, match="count=31"):
        cmb.insert(head, np.random.default_rng(0), count=31)
