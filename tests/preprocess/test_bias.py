"""N4 bias-field correction removes a smooth multiplicative field."""

from __future__ import annotations

import numpy as np

from neurolesion.preprocess.bias import n4_correct
from neurolesion.volume import Volume


def test_n4_flattens_a_linear_field(head: Volume) -> None:
    brain = head.meta["brain"]
    x = np.indices(head.shape)[0] / head.shape[0]
    biased = head.with_array(head.data * (0.7 + 0.6 * x))

    def left_right_ratio(volume: Volume) -> float:
        half = head.shape[0] // 2
        left, right = brain.copy(), brain.copy()
        left[half:], right[:half] = False, False
        return float(np.median(volume.data[right]) / np.median(volume.data[left]))

    corrected = n4_correct(biased, fit_spacing_mm=4.0)
    assert corrected.same_grid(head)
    assert left_right_ratio(biased) > 1.15
    assert abs(left_right_ratio(corrected) - left_right_ratio(head)) < 0.05
    assert corrected.meta["bias_field_range"][0][1] > corrected.meta["bias_field_range"][0][0]
