"""Rater visibility: contrast-to-noise of each lesion against the parenchyma around it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurolesion.synth.visibility import invisible_instances, lesion_cnr


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    image = rng.normal(100.0, 5.0, (40, 40, 40))
    instances = np.zeros(image.shape, np.int32)
    tissue = np.ones(image.shape, bool)
    instances[5:8, 5:8, 5:8] = 1
    image[5:8, 5:8, 5:8] += 25.0  # 5 noise SD brighter: seen
    instances[15:18, 15:18, 15:18] = 2  # as bright as its surroundings: not seen
    # a bright lesion against a dark ventricle: the ventricle is not tissue, so not part of its shell
    image[25:35, 25:35, 20:25] = 10.0
    tissue[25:35, 25:35, 20:25] = False
    instances[28:31, 28:31, 25:28] = 3
    image[28:31, 28:31, 25:28] += 25.0
    return image, instances, tissue


def test_bright_lesions_are_seen_and_flat_ones_are_not() -> None:
    image, instances, tissue = _scene()
    cnr = lesion_cnr(image, instances, tissue)
    assert cnr[1] > 3 and abs(cnr[2]) < 1 and cnr[3] > 3
    assert invisible_instances(image, instances, tissue, min_detectability=3.0) == [2]
    assert invisible_instances(image, instances, tissue, min_detectability=0.0) == [
        i for i in (2,) if cnr[i] < 0
    ]


def test_a_lesion_without_tissue_around_it_is_kept() -> None:
    image, instances, tissue = _scene()
    instances[10:13, 30:33, 30:33] = 4
    tissue[6:17, 26:37, 26:37] = False  # enclosed by non-tissue
    assert math.isnan(lesion_cnr(image, instances, tissue)[4])
    assert 4 not in invisible_instances(image, instances, tissue, min_detectability=3.0)


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="share one shape"):
        lesion_cnr(np.zeros((4, 4, 4)), np.zeros((4, 4, 5), np.int32), np.ones((4, 4, 4), bool))
