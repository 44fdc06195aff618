from dataclasses import replace

import numpy as np

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import cmb, mimics
from neurolesion.synth.tissues import LesionTissue
from tests.synth.lesions.checks import check_truth

MIMIC_CODES = [LesionTissue.FLOW_VOID, LesionTissue.CALCIFICATION, Tissue.SINUS_AIR]
UNDER = [Tissue.CSF, Tissue.VESSEL, Tissue.WM, Tissue.PALLIDUM, Tissue.CHOROID_PLEXUS, Tissue.SKULL]


def test_mimics_painted_where_anatomy_allows(head: Head) -> None:
    before = head.labels.copy()
    out = mimics.insert(
        head, np.random.default_rng(0), pallidal_probability=1.0, plexus_probability=1.0, air_probability=1.0
    )
    check_truth(before, head.labels, out, MIMIC_CODES, MIMIC_CODES, UNDER)
    types = {(r.type, r.subtype) for r in out.records}
    assert ("flow_void", "sulcal") in types
    assert ("calcification", "pallidum") in types
    assert ("air_cells", "skull_base") in types
    assert out.task == "mimic"
    calc = head.labels == LesionTissue.CALCIFICATION
    assert np.isin(before[calc], [Tissue.PALLIDUM, Tissue.CHOROID_PLEXUS]).all()
    assert np.isin(
        before[head.labels == LesionTissue.FLOW_VOID], [Tissue.CSF, Tissue.VESSEL, Tissue.WM]
    ).all()


def test_mimics_never_enter_cmb_truth(head: Head) -> None:
    truth = cmb.insert(head, np.random.default_rng(1), count=25)
    painted_cmb = head.labels == LesionTissue.CMB
    mimics.insert(head, np.random.default_rng(2), pallidal_probability=1.0, plexus_probability=1.0)
    np.testing.assert_array_equal(head.labels == LesionTissue.CMB, painted_cmb)
    np.testing.assert_array_equal(truth.instances > 0, painted_cmb)


def test_a_fraction_of_sulcal_vessels_are_enhancing_veins(head: Head) -> None:
    before = head.labels.copy()
    out = mimics.insert(head, np.random.default_rng(3), flow_voids=(12, 12), enhancing_fraction=1.0)
    veins = [r for r in out.records if r.subtype == "sulcal_vein"]
    assert veins and not [r for r in out.records if r.subtype == "sulcal"]
    painted = (head.labels == Tissue.VESSEL) & (before != Tissue.VESSEL)
    assert painted.any() and np.isin(before[painted], [Tissue.CSF]).all()  # in the sulci only
    assert not (head.labels == LesionTissue.FLOW_VOID)[before == Tissue.CSF].any()


def test_no_enhancing_veins_by_default_and_the_same_draws(head: Head) -> None:
    first, second = head.labels.copy(), head.labels.copy()
    a = mimics.insert(replace(head, labels=first), np.random.default_rng(4))
    b = mimics.insert(replace(head, labels=second), np.random.default_rng(4), enhancing_fraction=0.0)
    assert {r.subtype for r in a.records} == {r.subtype for r in b.records} and "sulcal_vein" not in {
        r.subtype for r in a.records
    }
    np.testing.assert_array_equal(first, second)
