import numpy as np
import pytest

from neurolesion.anatomy.labels import Tissue
from neurolesion.synth.head import Head
from neurolesion.synth.lesions import lacune, placement
from neurolesion.synth.lesions.cmb import CMBParams
from neurolesion.synth.lesions.tumor import TumorParams
from neurolesion.synth.lesions.wmh import WMHParams


def test_validate_turns_yaml_lists_into_tuples() -> None:
    p = TumorParams(met_diameter_mm=[2, 20], kinds=["metastasis"])  # type: ignore[arg-type]
    assert p.met_diameter_mm == (2, 20) and p.kinds == ("metastasis",)
    q = CMBParams(location_probs=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])  # type: ignore[arg-type]
    assert q.location_probs[1] == (0, 1, 0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (TumorParams, {"met_diameter_mm": (0.0, 5.0)}, "met_diameter_mm"),
        (TumorParams, {"ring_probability": 1.5}, "ring_probability"),
        (CMBParams, {"pattern_probs": (0.0, 0.0, 0.0)}, "pattern_probs"),
        (WMHParams, {"deep_count": ((0, 0), (5, 2), (0, 1), (0, 1))}, "deep_count"),
        (WMHParams, {"pons_probability": (0.0, 2.0, 0.0, 0.0)}, "pons_probability"),
    ],
)
def test_validate_names_the_bad_field(cls: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_draw_count_bounds() -> None:
    rng = np.random.default_rng(0)
    counts = [placement.draw_count(None, 0.3, 5.0, 30, rng) for _ in range(300)]
    assert min(counts) == 0 and max(counts) <= 30 and 3 < np.mean(counts) < 6
    assert placement.draw_count(7, 1.0, 5.0, 30, rng) == 7


def test_next_to_is_face_adjacency() -> None:
    a = np.zeros((5, 5, 5), bool)
    b = np.zeros_like(a)
    b[2, 2, 2] = True
    a[:] = True
    assert placement.next_to(a, b).sum() == 6


def test_push_radially_compresses_and_keeps_lesions(head: Head) -> None:
    centre = np.argwhere(head.labels == Tissue.WM).mean(0).round()
    lesion = tuple(centre.astype(int) + np.array([0, 8, 0]))
    head.labels[lesion] = 33  # a lesion voxel 16 mm away
    before = head.labels.copy()
    placement.push_radially(head, centre, 8.0, 24.0)
    assert head.labels[lesion] == 33
    assert ((before >= 32) == (head.labels >= 32)).all()
    moved = before != head.labels
    assert moved.any()
    assert np.isin(head.labels[moved], list(placement.INTRACRANIAL)).all()
    outside = ~np.isin(before, list(placement.INTRACRANIAL))
    np.testing.assert_array_equal(before[outside], head.labels[outside])


def test_unknown_parameter_is_named(head: Head) -> None:
    with pytest.raises(ValueError, match=r"LacuneParams: unknown parameter\(s\) \['diametr_mm'\]"):
        lacune.insert(head, np.random.default_rng(0), diametr_mm=(3.0, 5.0))
