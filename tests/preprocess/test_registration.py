"""Rigid registration recovers a known transform across contrasts; world conversions are consistent."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from neurolesion.errors import InputError
from neurolesion.preprocess.registration import (
    RigidTransform,
    matrix_from_itk_file,
    normalised_mutual_information,
    register_rigid,
    to_sitk,
)
from neurolesion.preprocess.resample import Grid, resample
from neurolesion.volume import Volume


def _rigid(angles_deg: tuple[float, float, float], shift_mm: tuple[float, float, float]) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    matrix[:3, 3] = shift_mm
    return matrix


def test_recovers_known_rigid_transform_across_contrasts(head: Volume) -> None:
    truth = _rigid((4.0, -3.0, 5.0), (3.0, -2.5, 4.0))
    # moving: another contrast of the same head, moved so that fixed point p sits at truth @ p
    inverted = np.where(head.meta["brain"], 300.0 - head.data, head.data)
    moving = Volume(inverted, truth @ head.affine, "moving.nii.gz")
    found = register_rigid(moving, head)
    error = RigidTransform(np.linalg.inv(truth) @ found.matrix)
    assert error.rotation_deg < 1.0
    assert error.translation_mm < 1.0
    assert found.nmi_after > found.nmi_before


def test_to_sitk_keeps_world_coordinates() -> None:
    affine = np.array([[-0.9, 0, 0, 10.0], [0, 0, 1.5, -4.0], [0, 0.8, 0, 2.0], [0, 0, 0, 1]])
    volume = Volume(np.zeros((3, 4, 5)), affine)
    image = to_sitk(volume)
    ras = affine @ [1, 2, 3, 1]
    assert np.allclose(image.TransformIndexToPhysicalPoint((1, 2, 3)), ras[:3] * [-1, -1, 1])


def test_itk_file_matrix_matches_sitk_resampling(tmp_path: object) -> None:
    rng = np.random.default_rng(0)
    volume = Volume(rng.random((12, 12, 12)), np.diag([1.0, 1.2, 1.5, 1.0]))
    transform = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.05, 0.2, (2.0, -1.0, 0.5))
    path = f"{tmp_path}/t.txt"
    sitk.WriteTransform(transform, path)
    ours = resample(volume, Grid.of(volume), transform=matrix_from_itk_file(path)).data
    image = to_sitk(volume)
    theirs = sitk.GetArrayFromImage(sitk.Resample(image, image, transform, sitk.sitkLinear)).transpose(
        2, 1, 0
    )
    both = (ours > 0) & (theirs > 0)
    assert both.sum() > 500
    np.testing.assert_allclose(ours[both], theirs[both], atol=1e-5)


def test_nmi_is_higher_for_dependent_samples() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(5000)
    assert normalised_mutual_information(a, a**2) > normalised_mutual_information(a, rng.random(5000)) + 0.3


def test_summary_is_json_safe() -> None:
    figures = RigidTransform(np.eye(4)).summary()
    assert figures["rotation_deg"] == 0.0 and figures["nmi_before"] is None


def test_reads_matrix_offset_transform_files(tmp_path: object) -> None:
    # the format of real-ms's studyN_FLAIR_to_common_space.txt, which SimpleITK reads as a generic transform
    path = f"{tmp_path}/m.txt"
    with open(path, "w") as file:
        file.write(
            "#Insight Transform File V1.0\n#Transform 0\nTransform: MatrixOffsetTransformBase_double_3_3\n"
            "Parameters: 1 0 0 0 1 0 0 0 1 2 -3 4\nFixedParameters: 0 0 0\n"
        )
    matrix = matrix_from_itk_file(path)
    assert np.allclose(matrix[:3, :3], np.eye(3))
    assert np.allclose(matrix[:3, 3], [-2.0, 3.0, 4.0])  # LPS translation seen in RAS


def test_unreadable_transform_file_is_an_input_error(tmp_path: object) -> None:
    path = f"{tmp_path}/bad.txt"
    with open(path, "w") as file:
        file.write("not a transform\n")
    with pytest.raises(InputError, match="bad.txt: cannot be read"):
        matrix_from_itk_file(path)


def test_same_input_same_transform(head: Volume) -> None:
    """Seed 0 is a seed, not SimpleITK's wall-clock default: two runs give the same transform."""
    moving = Volume(head.data, _rigid((2.0, 0.0, -3.0), (2.0, 1.0, -1.5)) @ head.affine, "moving.nii.gz")
    first, second = register_rigid(moving, head), register_rigid(moving, head)
    np.testing.assert_allclose(first.matrix, second.matrix, atol=1e-4)
