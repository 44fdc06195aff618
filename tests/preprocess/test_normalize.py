"""Intensity normalisation: percentile clipping and z-score inside the brain."""

from __future__ import annotations

import numpy as np
import pytest

from neurolesion.errors import InputError
from neurolesion.preprocess.normalize import NORMALISATIONS, clip_percentiles, normaliser, normalize, zscore
from neurolesion.volume import Volume


def test_zscore_inside_mask(head: Volume) -> None:
    brain = head.meta["brain"]
    z = normalize(head, brain)
    assert z.array.dtype == np.float32
    assert abs(float(z.data[brain].mean())) < 1e-5
    assert abs(float(z.data[brain].std()) - 1) < 1e-4
    assert z.same_grid(head)


def test_clip_percentiles_limits_outliers() -> None:
    array = np.random.default_rng(0).normal(0, 1, (20, 20, 20))
    array[0, 0, 0] = 1e6
    clipped = clip_percentiles(Volume(array, np.eye(4)))
    assert clipped.data.max() < 4
    assert clipped.data.max() == pytest.approx(np.percentile(array, 99.5), rel=1e-5)


def test_empty_mask_and_constant_brain_are_input_errors(head: Volume) -> None:
    with pytest.raises(InputError, match=r"head.nii.gz: the brain mask is empty"):
        normalize(head, np.zeros(head.shape, bool))
    flat = head.with_array(np.ones(head.shape))
    with pytest.raises(InputError, match=r"head.nii.gz: intensity is constant"):
        zscore(flat, head.meta["brain"])
    with pytest.raises(ValueError, match="mask shape"):
        zscore(head, np.ones((2, 2, 2), bool))


def test_normaliser_names_the_source_and_the_known_names() -> None:
    assert normaliser("percentile-nonzero") is NORMALISATIONS["percentile-nonzero"]
    with pytest.raises(
        InputError, match=r"m\.pt: normalisation 'minmax' unknown; expected one of \['percentile"
    ):
        normaliser("minmax", "m.pt")
