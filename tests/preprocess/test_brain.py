"""Brain extraction: method registry and mask clean-up (deepbet on real scans: test_realdata.py)."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.preprocess.brain import (
    available_methods,
    clean_mask,
    extract_brain,
    looks_skull_stripped,
    register_brain_method,
)
from neurolesion.volume import Volume


def test_clean_mask_keeps_largest_component_and_fills_holes() -> None:
    probability = np.zeros((20, 20, 20), dtype=np.float32)
    probability[4:16, 4:16, 4:16] = 0.9
    probability[9:11, 9:11, 9:11] = 0.1  # a hole
    probability[0:2, 0:2, 0:2] = 0.9  # a separate speck
    mask = clean_mask(probability)
    assert mask.sum() == 12**3
    assert not mask[0, 0, 0]
    assert not clean_mask(np.zeros((4, 4, 4))).any()


def test_plugged_in_method_and_nonzero(head: Volume) -> None:
    @register_brain_method("test-truth")
    def truth(images: dict[str, Volume]) -> np.ndarray:
        return next(iter(images.values())).meta["brain"].astype(np.float32)

    assert {"deepbet", "deepbet-t1", "nonzero", "test-truth"} <= set(available_methods())
    assert np.array_equal(extract_brain({"t1": head}, "test-truth"), head.meta["brain"])
    stripped = head.with_array(np.where(head.meta["brain"], head.data + 1, 0.0))
    assert np.array_equal(extract_brain({"t1": stripped}, "nonzero"), head.meta["brain"])


def test_deepbet_mean_uses_the_structural_contrasts_when_present(
    head: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neurolesion.preprocess import brain

    seen: list[float] = []

    def fake(volume: Volume) -> np.ndarray:
        seen.append(round(float(volume.data.flat[0]), 3))
        return np.full(volume.shape, float(volume.data.flat[0]), np.float32)

    monkeypatch.setattr(brain, "deepbet_probability", fake)
    images = {s: head.with_array(np.full(head.shape, v)) for s, v in [("swi", 1.0), ("t1", 0.2), ("t2", 0.4)]}
    assert np.allclose(brain.deepbet_mean(images), 0.3) and sorted(seen) == [0.2, 0.4]
    seen.clear()
    only_susceptibility = {
        s: head.with_array(np.full(head.shape, v)) for s, v in [("swi", 1.0), ("t2star", 0.5)]
    }
    assert np.allclose(brain.deepbet_mean(only_susceptibility), 0.75) and len(seen) == 2


def test_errors(head: Volume) -> None:
    with pytest.raises(InputError, match="brain extraction method 'nope' unknown"):
        extract_brain({"t1": head}, "nope")
    with pytest.raises(InputError, match="head.nii.gz: no brain found"):
        extract_brain({"t1": head.with_array(np.zeros(head.shape))}, "nonzero")
    other = Volume(head.array, np.diag([1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="one grid"):
        extract_brain({"t1": head, "t2": other}, "nonzero")


def test_auto_keeps_the_brain_of_a_stripped_input() -> None:
    # a 1 l "brain" (sphere of radius 62 mm at 2 mm voxels), zero outside: auto must not run deepbet
    grid = np.indices((70, 70, 70)) - 34.5
    sphere = np.sqrt((grid**2).sum(axis=0)) * 2.0 < 62
    image = np.where(sphere, 50 + np.random.default_rng(0).random(sphere.shape), 0.0)
    stripped = Volume(image, np.diag([2.0, 2.0, 2.0, 1.0]))
    assert looks_skull_stripped(stripped)
    assert np.array_equal(extract_brain({"t1": stripped}), sphere)
    head = stripped.with_array(np.where(sphere, image, 10.0))  # background not zero: a raw scan
    assert not looks_skull_stripped(head)
