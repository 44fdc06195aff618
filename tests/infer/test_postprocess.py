"""Threshold, components, minimum size, the 2 mm periphery false-positive rule and confidences."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.infer.postprocess import keep_confident, periphery_outside_fraction, postprocess


def ball(shape: tuple[int, int, int], centre: tuple[int, int, int], r: float) -> np.ndarray:
    g = np.indices(shape)
    return ((g - np.asarray(centre)[:, None, None, None]) ** 2).sum(0) <= r * r


def test_components_sorted_by_size_with_max_probability() -> None:
    prob = np.zeros((30, 30, 30), np.float32)
    prob[ball(prob.shape, (8, 8, 8), 2)] = 0.6
    prob[ball(prob.shape, (20, 20, 20), 4)] = 0.8
    prob[20, 20, 20] = 0.97
    labels, conf = postprocess(prob, (1.0, 1.0, 1.0))
    assert labels.max() == 2
    assert labels[20, 20, 20] == 1 and labels[8, 8, 8] == 2
    assert conf == {1: 0.97, 2: 0.6}


def test_min_size_uses_millimetres() -> None:
    prob = np.zeros((20, 20, 20), np.float32)
    prob[5:7, 5:7, 5:7] = 0.9  # 8 voxels
    assert postprocess(prob, (1.0, 1.0, 1.0), min_size_mm3=10)[0].max() == 0
    assert postprocess(prob, (1.0, 1.0, 2.0), min_size_mm3=10)[0].max() == 1


def test_candidate_on_brain_surface_is_dropped() -> None:
    shape = (40, 40, 40)
    brain = ball(shape, (20, 20, 20), 15)
    prob = np.zeros(shape, np.float32)
    prob[ball(shape, (20, 20, 20), 1.5)] = 0.9  # deep: kept
    prob[ball(shape, (20, 20, 35), 1.5)] = 0.9  # on the surface, more than half the rim outside
    labels, conf = postprocess(prob, (1.0, 1.0, 1.0), parenchyma_mask=brain)
    assert labels.max() == 1 and labels[20, 20, 20] == 1 and labels[20, 20, 35] == 0
    assert len(conf) == 1


def test_extra_axial_rule_judges_the_candidate_not_its_surroundings() -> None:
    shape = (40, 40, 40)
    # a tumour bulging out of the brain, held by the mask as the brain's own tissue (a meningioma, an
    # intracanalicular schwannoma): its periphery is mostly outside the mask, its voxels inside
    tumour = ball(shape, (20, 20, 37), 3)
    brain = ball(shape, (20, 20, 20), 15) | tumour
    prob = np.zeros(shape, np.float32)
    prob[tumour] = 0.9
    prob[ball(shape, (3, 3, 3), 2)] = 0.9  # wholly outside the mask (scalp): dropped by both rules
    assert periphery_outside_fraction(tumour, brain, (1.0, 1.0, 1.0)) > 0.5
    assert postprocess(prob, (1.0, 1.0, 1.0), parenchyma_mask=brain)[0].max() == 0
    labels, _ = postprocess(prob, (1.0, 1.0, 1.0), parenchyma_mask=brain, extra_axial=True)
    assert labels.max() == 1 and labels[20, 20, 37] == 1 and labels[3, 3, 3] == 0


def test_periphery_fraction() -> None:
    comp = np.zeros((11, 11, 11), bool)
    comp[5, 5, 5] = True
    inside = np.ones_like(comp)
    assert periphery_outside_fraction(comp, inside, (1.0, 1.0, 1.0)) == 0.0
    half = inside.copy()
    half[:, :, 6:] = False
    assert 0.3 < periphery_outside_fraction(comp, half, (1.0, 1.0, 1.0)) < 0.5


def test_bad_input() -> None:
    with pytest.raises(InputError, match="one task"):
        postprocess(np.zeros((2, 4, 4, 4), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="parenchyma"):
        postprocess(np.zeros((4, 4, 4), np.float32), (1.0, 1.0, 1.0), parenchyma_mask=np.ones((3, 3, 3)))


def test_min_confidence_drops_uncertain_candidates() -> None:
    prob = np.zeros((30, 30, 30), np.float32)
    prob[ball(prob.shape, (8, 8, 8), 2)] = 0.6
    prob[ball(prob.shape, (20, 20, 20), 3)] = 0.95
    labels, conf = postprocess(prob, (1.0, 1.0, 1.0), min_confidence=0.9)
    assert conf == {1: 0.95} and labels[8, 8, 8] == 0 and labels[20, 20, 20] == 1


def test_keep_confident_keeps_output_lesions_touching_a_confident_model_lesion() -> None:
    model_prob = np.zeros((12, 12, 12), np.float32)
    model_prob[2:5, 2:5, 2:5] = 0.95  # confident
    model_prob[7:10, 7:10, 7:10] = 0.6  # not
    # the output grid here is the model grid with both maxima lowered (as thick-slice interpolation does)
    labels, _ = postprocess(model_prob * 0.8, (1.0, 1.0, 1.0), threshold=0.4)
    assert labels.max() == 2
    kept = keep_confident(labels, model_prob, (1.0, 1.0, 1.0), 0.9, lambda a: a)
    assert kept.max() == 1 and kept.dtype == np.int32
    assert (kept[2:5, 2:5, 2:5] == 1).all() and not kept[7:10, 7:10, 7:10].any()
    assert not keep_confident(labels, model_prob, (1.0, 1.0, 1.0), 0.99, lambda a: a).any()


def test_postprocess_refuses_an_operating_point_out_of_range() -> None:
    prob = np.zeros((6, 6, 6), np.float32)
    for kwargs, message in (
        ({"threshold": 0.0}, "threshold 0"),
        ({"threshold": 1.0}, "threshold 1"),
        ({"min_size_mm3": -1.0}, "min_size_mm3 -1"),
        ({"min_confidence": 1.2}, "min_confidence 1.2"),
    ):
        with pytest.raises(InputError, match=message):
            postprocess(prob, (1.0, 1.0, 1.0), **kwargs)


def test_the_extra_axial_rule_judges_against_the_tissue_mask() -> None:
    # A sure candidate inside the brain mask but outside the tissue mask (a vessel among the CSF): dropped
    # by the extra-axial rule, kept by the periphery rule, which ignores the tissue mask.
    prob = np.zeros((20, 20, 20), np.float32)
    prob[8:12, 8:12, 8:12] = 0.95
    brain = np.ones(prob.shape, bool)
    tissue = brain.copy()
    tissue[6:14, 6:14, 6:14] = False
    assert postprocess(prob, (1, 1, 1), brain, extra_axial=True)[0].max() == 1
    assert postprocess(prob, (1, 1, 1), brain, extra_axial=True, tissue_mask=tissue)[0].max() == 0
    assert postprocess(prob, (1, 1, 1), brain, tissue_mask=tissue)[0].max() == 1
    with pytest.raises(InputError, match="tissue mask shape"):
        postprocess(prob, (1, 1, 1), brain, tissue_mask=tissue[:5])


def test_the_extra_axial_rule_ignores_what_lies_outside_the_brain_mask() -> None:
    # With a tissue mask, an extra-axial candidate is judged by its voxels inside the brain mask only: a
    # schwannoma filling its bony canal (a quarter of it inside the mask, that quarter tissue) is kept; a
    # vessel leaving the mask among the CSF (its inside part mostly CSF) and a scalp blob that grazes the
    # mask (under 5 % inside) are dropped.
    shape = (40, 40, 40)
    brain = np.zeros(shape, bool)
    brain[:, :, :20] = True
    tissue = brain.copy()
    tissue[:, 25:35, 16:20] = False  # CSF along the surface at the vessel
    canal = np.zeros(shape, bool)
    canal[5:9, 5:9, 17:29] = True  # 3 of its 12 slices inside the mask, in tissue
    vessel = np.zeros(shape, bool)
    vessel[28:32, 28:32, 14:26] = True  # 6 slices inside: 4 in the CSF, 2 in tissue
    scalp = np.zeros(shape, bool)
    scalp[18:22, 5:9, 19:40] = True  # 1 of its 21 slices inside
    prob = np.zeros(shape, np.float32)
    prob[canal | vessel | scalp] = 0.9
    labels, _ = postprocess(prob, (1, 1, 1), brain, extra_axial=True, tissue_mask=tissue)
    assert labels[canal].all() and not labels[vessel].any() and not labels[scalp].any()
    # Without the tissue mask, more than half of a candidate's voxels outside the brain mask drop it: the
    # canal tumour and the scalp blob; the vessel, half inside, stays.
    labels, _ = postprocess(prob, (1, 1, 1), brain, extra_axial=True)
    assert not labels[canal].any() and labels[vessel].all() and not labels[scalp].any()
