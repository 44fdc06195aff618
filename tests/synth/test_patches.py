"""PatchStream: shapes, normalisation, lesion-centred sampling, missing sequences, determinism."""

from __future__ import annotations

from itertools import islice
from typing import Any

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.synth import patches as patches_mod
from neurolesion.synth.case import SimCase, SynthConfig, simulate_case
from neurolesion.synth.patches import PatchStream, case_arrays
from tests.synth.test_case import FAKES

FAST = SynthConfig(working_downsample=2, spacing=2.0)


@pytest.fixture
def fake_lesions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate with the tiny fake generators instead of the real lesion modules."""

    def fake_simulate(seed: int, tasks: Any, sequences: Any = None, config: Any = None) -> SimCase:
        return simulate_case(seed, tasks, sequences, config, generators=FAKES)

    monkeypatch.setattr(patches_mod, "simulate_case", fake_simulate)


def test_patches_have_the_contract_shapes(fake_lesions: None) -> None:
    stream = PatchStream(
        FAST, ["wmh", "brain"], ["flair", "t1"], (16, 16, 16), lesion_prob=1.0, patches_per_head=3
    )
    got = list(islice(iter(stream), 3))
    assert any(p["label"][0].any() for p in got)
    for p in got:
        assert p["image"].shape == (2, 16, 16, 16) and p["image"].dtype == np.float32
        assert p["label"].shape == (2, 16, 16, 16) and p["label"].dtype == np.uint8
        assert p["present"].tolist() == [True, True]
        assert p["label"].any()  # centred on a lesion or brain voxel
    again = list(
        islice(iter(PatchStream(FAST, ["wmh", "brain"], ["flair", "t1"], (16, 16, 16), 1.0, 0, 3)), 3)
    )
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(got, again, strict=True))


def test_case_arrays_zscore_inside_brain_and_flag_missing() -> None:
    case = simulate_case(2, ["wmh"], ["flair"], FAST, generators=FAKES)
    arr = case_arrays(case, ["wmh"], ["flair", "t2"])
    assert arr.present.tolist() == [True, False]
    inside = arr.image[0][arr.brain]
    assert abs(float(inside.mean())) < 1e-3 and abs(float(inside.std()) - 1) < 1e-2
    assert not arr.image[1].any()
    assert np.array_equal(arr.label[0] > 0, case.labels["wmh"] > 0)


def test_drop_prob_keeps_at_least_one_sequence() -> None:
    case = simulate_case(3, ["brain"], ["flair", "t1"], FAST)
    arr = case_arrays(case, ["brain"], ["flair", "t1"], np.random.default_rng(0), drop_prob=1.0)
    assert arr.present.sum() == 1


def test_bad_arguments() -> None:
    with pytest.raises(InputError):
        PatchStream(FAST, ["stroke"])
    with pytest.raises(InputError):
        PatchStream(FAST, ["brain"], patch_size=(16, 16))
