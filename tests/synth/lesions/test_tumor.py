import numpy as np
import pytest
from scipy import ndimage

from neurolesion.anatomy.labels import PARENCHYMA, Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import cmb, tumor
from neurolesion.synth.tissues import LesionTissue as LT
from tests.synth.lesions.checks import check_truth

NO_PUSH = {"mass_effect_min_mm": 1000.0}


def test_metastases_exact_with_oedema_in_white_matter(head: Head) -> None:
    before = head.labels.copy()
    out = tumor.insert(head, np.random.default_rng(0), kinds=("metastasis",), met_count=12, **NO_PUSH)
    painted = [LT.TUMOR_ENHANCING, LT.TUMOR_NECROSIS, LT.OEDEMA]
    check_truth(before, head.labels, out, tumor.MET_INSTANCE, painted, PARENCHYMA)
    assert 8 <= len(out.records) <= 12
    oedema = head.labels == LT.OEDEMA
    assert oedema.any() and np.isin(before[oedema], list(tumor.OEDEMA_UNDER)).all()
    assert not (oedema & (out.instances > 0)).any()
    for r in out.records:
        assert r.type == "metastasis" and r.subtype in {"solid", "ring"}
        assert 1.0 <= r.extra["diameter_mm"] <= 30.0


def test_ring_metastases_have_necrotic_core(head: Head) -> None:
    out = tumor.insert(
        head,
        np.random.default_rng(1),
        kinds=("metastasis",),
        met_count=3,
        met_diameter_mm=(18.0, 26.0),
        ring_probability=1.0,
        **NO_PUSH,
    )
    assert out.records and all(r.subtype == "ring" for r in out.records)
    for r in out.records:
        inst = out.instances == r.id
        codes = head.labels[inst]
        assert (codes == LT.TUMOR_NECROSIS).any() and (codes == LT.TUMOR_ENHANCING).any()
        necrosis = head.labels == LT.TUMOR_NECROSIS
        assert not (ndimage.binary_dilation(necrosis & inst) & ~inst).any(), "necrosis must be walled in"


def test_meningioma_extra_axial_with_dural_tail(head: Head) -> None:
    before = head.labels.copy()
    out = tumor.insert(head, np.random.default_rng(2), kinds=("meningioma",), **NO_PUSH)
    check_truth(
        before, head.labels, out, [LT.MENINGIOMA], [LT.MENINGIOMA, LT.DURAL_TAIL], tumor.EXTRA_AXIAL_UNDER
    )
    (r,) = out.records
    assert r.type == "meningioma" and r.region in {"lobar", "infratentorial"}
    tumour = out.instances == 1
    assert (before[tumour] == Tissue.CSF).any() and (before[tumour] == Tissue.DURA).any()
    assert (head.labels == LT.DURAL_TAIL).any()


def test_schwannoma_fills_the_internal_auditory_canal(head: Head) -> None:
    before = head.labels.copy()
    out = tumor.insert(
        head, np.random.default_rng(3), kinds=("schwannoma",), intracanalicular_probability=1.0
    )
    check_truth(before, head.labels, out, [LT.SCHWANNOMA], [LT.SCHWANNOMA], tumor.CANAL_UNDER)
    (r,) = out.records
    assert (r.type, r.subtype, r.region, r.extra["koos"]) == (
        "schwannoma",
        "intracanalicular",
        "infratentorial",
        1,
    )
    assert (before[out.instances == 1] == Tissue.SKULL).any()


def test_cisternal_schwannoma_in_the_angle(head: Head) -> None:
    out = tumor.insert(
        head, np.random.default_rng(4), kinds=("schwannoma",), intracanalicular_probability=0.0, **NO_PUSH
    )
    (r,) = out.records
    assert r.subtype == "cisternal" and r.extra["koos"] >= 2 and r.volume_ml > 0.05


def test_mass_effect_moves_anatomy_but_never_other_lesions(head: Head) -> None:
    bleeds = cmb.insert(head, np.random.default_rng(5), count=30)
    regions_before = head.regions.copy()
    before = head.labels.copy()
    out = tumor.insert(
        head,
        np.random.default_rng(6),
        kinds=("metastasis", "meningioma"),
        met_count=4,
        met_diameter_mm=(20.0, 30.0),
    )
    np.testing.assert_array_equal(head.labels == LT.CMB, bleeds.instances > 0)
    moved = (before != head.labels) & (head.labels < 32)
    assert moved.any(), "large tumours should displace tissue"
    assert (head.regions != regions_before).any()
    pairs_before = set(zip(before.ravel().tolist(), regions_before.ravel().tolist(), strict=True))
    pairs_after = set(zip(head.labels[moved].tolist(), head.regions[moved].tolist(), strict=True))
    assert pairs_after <= pairs_before, "labels and regions must move together"
    instance_codes = [LT.TUMOR_ENHANCING, LT.TUMOR_NECROSIS, LT.MENINGIOMA]
    np.testing.assert_array_equal(out.instances > 0, np.isin(head.labels, instance_codes))


def test_tumor_rejects_unknown_kind(head: Head) -> None:
    with pytest.raises(ValueError, match="glioma"):
        tumor.insert(head, np.random.default_rng(0), kinds=("glioma",))


def test_schwannoma_without_petrous_bone_is_cisternal(head: Head) -> None:
    head.labels[head.labels == Tissue.SKULL] = Tissue.SCALP
    out = tumor.insert(
        head, np.random.default_rng(8), kinds=("schwannoma",), intracanalicular_probability=1.0
    )
    (r,) = out.records
    assert r.subtype == "cisternal" and r.extra["canal_length_mm"] == 0.0 and r.region == "infratentorial"
