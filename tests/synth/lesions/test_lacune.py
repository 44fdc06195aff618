import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import lacune
from neurolesion.synth.tissues import LesionTissue
from tests.synth.lesions.checks import check_truth

CODES = [LesionTissue.LACUNE_FLUID, LesionTissue.LACUNE_RIM]


def test_lacune_exact_cavity_and_rim(head: Head) -> None:
    before = head.labels.copy()
    out = lacune.insert(
        head, np.random.default_rng(0), count=10, rim_probability=1.0, rim_coverage=(1.0, 1.0)
    )
    check_truth(before, head.labels, out, [LesionTissue.LACUNE_FLUID], CODES, lacune.UNDER)
    assert len(out.records) >= 8
    rim = head.labels == LesionTissue.LACUNE_RIM
    assert rim.any() and not (rim & (out.instances > 0)).any()
    for r in out.records:
        assert 3.0 <= r.extra["diameter_mm"] <= 15.0 and r.subtype in lacune.LOCATIONS
        n_comp = ndimage.label(out.instances == r.id, structure=np.ones((3, 3, 3)))[1]
        assert n_comp == 1


def test_lacune_never_touches_ventricles(head: Head) -> None:
    lacune.insert(head, np.random.default_rng(1), count=15)
    cav = head.labels == LesionTissue.LACUNE_FLUID
    assert cav.any()
    assert not (ndimage.binary_dilation(cav) & (head.labels == Tissue.VENTRICLE)).any()


def test_lacune_size_bounded_by_diameter(head: Head) -> None:
    out = lacune.insert(head, np.random.default_rng(2), count=8)
    for r in out.records:
        ball_ml = 4 / 3 * np.pi * (r.extra["diameter_mm"] / 2 + 2.0) ** 3 / 1000
        assert r.volume_ml <= ball_ml


def test_lacune_rejects_bad_diameter(head: Head) -> None:
    with pytest.raises(ValueError, match="diameter_mm"):
        lacune.insert(head, np.random.default_rng(0), diameter_mm=(5.0, 2.0))
