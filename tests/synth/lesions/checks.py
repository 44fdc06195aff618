"""Assertions shared by the lesion generator tests."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from neurolesion.synth.lesions.base import LesionSet


def check_truth(
    before: np.ndarray,
    after: np.ndarray,
    lesions: LesionSet,
    instance_codes: Collection[int],
    painted_codes: Collection[int],
    allowed_under: Collection[int],
) -> None:
    """The exact-truth contract of a generator.

    Args:
        before: labels before the generator ran.
        after: labels after.
        lesions: what it returned.
        instance_codes: codes that make up the instances.
        painted_codes: every code it may paint (instances, rims, oedema ...).
        allowed_under: anatomy codes it may paint over.
    """
    changed = before != after
    assert np.isin(after[changed], list(painted_codes)).all(), "painted an unexpected code"
    assert np.isin(before[changed], list(allowed_under)).all(), "painted over a forbidden tissue"
    assert (before[changed] < 32).all(), "overwrote another lesion"
    inst = lesions.instances
    assert inst.dtype == np.int32 and inst.shape == after.shape
    new_instance = changed & np.isin(after, list(instance_codes))
    np.testing.assert_array_equal(inst > 0, new_instance)
    ids = np.unique(inst[inst > 0])
    np.testing.assert_array_equal(ids, np.arange(1, len(lesions.records) + 1))
    for rec, i in zip(lesions.records, ids, strict=True):
        assert rec.id == i
        assert rec.volume_ml > 0
        assert rec.region in {"lobar", "deep", "infratentorial", "none"}
        c = np.round(rec.centre_vox).astype(int)
        assert all(0 <= a < n for a, n in zip(c, after.shape, strict=True))
