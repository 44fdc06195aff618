import numpy as np
import pytest

from neurolesion import InputError, Volume


def test_volume_adds_channel_and_reports_spacing() -> None:
    aff = np.diag([-0.5, 0.5, 3.0, 1.0])
    v = Volume(np.zeros((4, 5, 6), dtype=np.int16), aff)
    assert v.array.shape == (1, 4, 5, 6) and v.array.dtype == np.float32
    assert v.shape == (4, 5, 6) and v.spacing == (0.5, 0.5, 3.0)


@pytest.mark.parametrize("shape", [(4, 5), (1, 2, 3, 4, 5)])
def test_volume_rejects_wrong_dimensions(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="expected"):
        Volume(np.zeros(shape), np.eye(4), name="x.nii")


def test_volume_rejects_singular_affine() -> None:
    with pytest.raises(InputError, match="x.nii: affine"):
        Volume(np.zeros((2, 2, 2)), np.zeros((4, 4)), name="x.nii")


def test_with_array_keeps_grid_and_checks_shape() -> None:
    v = Volume(np.zeros((4, 5, 6)), np.eye(4), meta={"a": 1})
    w = v.with_array(np.ones((4, 5, 6)), b=2)
    assert w.same_grid(v) and w.meta == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="differs"):
        v.with_array(np.ones((4, 5, 7)))
    with pytest.raises(ValueError, match="channels"):
        _ = Volume(np.zeros((2, 3, 3, 3)), np.eye(4)).data
