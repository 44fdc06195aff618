import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurolesion import InputError
from neurolesion.io.nifti import load_nifti, save_nifti, save_probability
from tests.conftest import write_nifti


def test_round_trip_keeps_affine_data_and_header(tmp_path: Path, head_like: np.ndarray) -> None:
    aff = np.array([[-0.9, 0, 0, 90], [0, 0.9, 0, -120], [0, 0, 3.0, -60], [0, 0, 0, 1]])
    src = write_nifti(tmp_path / "flair.nii.gz", head_like, aff)
    vol = load_nifti(src)
    assert vol.shape == head_like.shape and np.allclose(vol.affine, aff)
    out = save_nifti(vol.data > 50, tmp_path / "out" / "mask.nii.gz", like=vol, dtype=np.uint8)
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.uint8 and np.allclose(img.affine, aff)
    assert np.array_equal(np.asarray(img.dataobj) > 0, head_like > 50)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mask.nii.gz"]  # no temp file left


def test_probability_is_stored_in_8_bits_and_read_back_within_a_step(
    tmp_path: Path, head_like: np.ndarray
) -> None:
    vol = load_nifti(write_nifti(tmp_path / "flair.nii.gz", head_like, np.eye(4)))
    prob = np.random.default_rng(0).random(head_like.shape).astype(np.float32)
    prob[0, 0, 0], prob[0, 0, 1] = 0.0, 1.0
    out = save_probability(prob, tmp_path / "p.nii.gz", like=vol)
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.uint8
    back = img.get_fdata()
    assert np.abs(back - prob).max() <= 0.5 / 255 + 1e-6
    assert back[0, 0, 0] == 0.0 and back[0, 0, 1] == pytest.approx(1.0)
    assert load_nifti(out).data.max() == pytest.approx(1.0)  # our own reader applies the slope too
    with pytest.raises(ValueError, match="slope"):
        save_nifti(prob, tmp_path / "bad.nii.gz", like=vol, dtype=np.uint8, slope=0.0)


def test_probability_keeps_the_grid_and_left_right(tmp_path: Path) -> None:
    # LAS grid (x runs right-to-left), oblique, centred on x = 0: a blob on the subject's left must stay there
    c, s = np.cos(0.1), np.sin(0.1)
    aff = np.array(
        [[-1.2 * c, s, 0, 1.2 * c * 9.5 - s * 7.5], [1.2 * s, c, 0, -120], [0, 0, 3.0, -60], [0, 0, 0, 1]]
    )
    like = load_nifti(
        write_nifti(
            tmp_path / "flair.nii.gz", np.arange(20 * 16 * 8, dtype=np.float32).reshape(20, 16, 8), aff
        )
    )
    prob = np.zeros((20, 16, 8), np.float32)
    prob[2:5, 6:9, 3:5] = 0.9  # low i = large world x = the subject's left (RAS +x)
    img = nib.load(str(save_probability(prob, tmp_path / "p.nii.gz", like=like)))
    assert np.allclose(img.affine, aff) and img.shape == prob.shape
    back = img.get_fdata()
    centre = aff @ np.r_[np.argwhere(back > 0.5).mean(axis=0), 1.0]
    assert centre[0] > 0  # world x > 0: left


def test_4d_with_one_volume_is_accepted(tmp_path: Path, head_like: np.ndarray) -> None:
    vol = load_nifti(write_nifti(tmp_path / "a.nii.gz", head_like[..., None]))
    assert vol.shape == head_like.shape


@pytest.mark.parametrize(
    ("data", "affine", "message"),
    [
        (np.random.default_rng(0).random((8, 8, 8, 3)), None, "4D"),
        (np.random.default_rng(0).random((8, 8)), None, "not a 3D volume"),
        (np.zeros((8, 8, 8)), None, "constant"),
        (np.full((8, 8, 8), np.nan), None, "NaN or Inf"),
        (np.random.default_rng(0).random((8, 8, 8)), np.diag([1, 1, 40.0, 1]), "voxel size"),
        (np.random.default_rng(0).random((8, 8, 8)), np.diag([1e-3, 1, 1.0, 1]), "voxel size"),
        (
            np.random.default_rng(0).random((8, 8, 8)),
            np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            "not orthonormal",
        ),
    ],
)
def test_bad_images_are_rejected_with_the_file_name(
    tmp_path: Path, data: np.ndarray, affine: np.ndarray | None, message: str
) -> None:
    path = write_nifti(tmp_path / "bad.nii.gz", data.astype(np.float32), affine)
    with pytest.raises(InputError, match=message) as err:
        load_nifti(path)
    assert str(path) in str(err.value)


def test_nan_in_part_of_the_image_is_counted(tmp_path: Path, head_like: np.ndarray) -> None:
    head_like[0, 0, :3] = np.inf
    with pytest.raises(InputError, match="3 voxels are NaN or Inf"):
        load_nifti(write_nifti(tmp_path / "x.nii.gz", head_like))


def test_empty_label_map_is_allowed_with_label_flag(tmp_path: Path) -> None:
    vol = load_nifti(write_nifti(tmp_path / "gt.nii.gz", np.zeros((4, 4, 4), np.uint8)), label=True)
    assert vol.data.sum() == 0


def test_truncated_and_corrupt_files(tmp_path: Path, head_like: np.ndarray) -> None:
    good = write_nifti(tmp_path / "good.nii.gz", head_like)
    raw = gzip.decompress(good.read_bytes())
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(InputError, match="truncated"):
        load_nifti(truncated)
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="corrupt.nii.gz: cannot be read"):
        load_nifti(corrupt)
    with pytest.raises(InputError, match="file not found"):
        load_nifti(tmp_path / "missing.nii.gz")
