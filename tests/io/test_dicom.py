"""DICOM series import on synthetic series: geometry in every orientation, grouping, overrides, bad input."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from neurolesion.errors import InputError
from neurolesion.io.dicom import read_dicom_folder, stack_geometry
from tests.helpers.dicom_writer import grid_affine, phantom, write_series

SHAPE = (48, 40, 18)
SPACING = (1.5, 1.25, 4.0)
MARKER = (-20.0, 8.0, 6.0)  # RAS mm: on the patient's left
PLANES = ("axial", "sagittal", "coronal", "oblique")


def _series(tmp: Path, plane: str = "axial", **kwargs: object) -> tuple[np.ndarray, np.ndarray, Path]:
    affine = grid_affine(plane, SHAPE, SPACING, centre=(-3.0, 2.0, 1.0))
    array = phantom(affine, SHAPE, MARKER)
    folder = tmp / plane
    write_series(folder, array, affine, **kwargs)  # type: ignore[arg-type]
    return array, affine, folder


@pytest.mark.parametrize("plane", PLANES)
def test_phantom_keeps_its_world_coordinates(tmp_path: Path, plane: str) -> None:
    array, affine, folder = _series(tmp_path, plane, gzip=True, subfolders=3, slope=0.5, intercept=-20.0)
    # The files themselves: the marker's LPS x, computed from the standard's formula, is positive (left).
    marker_file = next(p for p in folder.rglob("*.gz") if dcmread(gzip.open(p)).pixel_array.max() >= 2000)
    ds = dcmread(gzip.open(marker_file))
    row, col = np.unravel_index(np.argmax(ds.pixel_array), ds.pixel_array.shape)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    lps = np.array(ds.ImagePositionPatient, dtype=float) + col * dc * iop[:3] + row * dr * iop[3:]
    assert lps[0] > 0

    [series] = read_dicom_folder(folder)
    vol = series.volume
    np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
    np.testing.assert_allclose(vol.data, array, atol=0.26)  # slope 0.5: values stored to the nearest 0.5
    peak = np.array(np.unravel_index(np.argmax(vol.data), vol.shape))
    world = vol.affine @ [*peak, 1.0]
    assert world[0] < 0  # left is -x in RAS
    assert np.linalg.norm(world[:3] - MARKER) <= 4.0  # inside the marker ball of radius 4 mm
    assert vol.spacing == pytest.approx(SPACING)


@pytest.mark.parametrize("plane", ["sagittal", "oblique"])
def test_matches_dcm2niix(tmp_path: Path, plane: str) -> None:
    dcm2niix = shutil.which("dcm2niix") or str(Path(__file__).parents[2] / ".venv" / "bin" / "dcm2niix")
    if not Path(dcm2niix).exists():
        pytest.skip("dcm2niix not installed")
    _, _, folder = _series(tmp_path, plane)
    out = tmp_path / "nii"
    out.mkdir()
    subprocess.run(
        [dcm2niix, "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(folder)],
        check=True,
        capture_output=True,
    )
    reference = nib.as_closest_canonical(nib.load(out / "ref.nii"))
    [series] = read_dicom_folder(folder)
    ours = nib.as_closest_canonical(nib.Nifti1Image(series.volume.data, series.volume.affine))
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-3)
    np.testing.assert_allclose(ours.get_fdata(), reference.get_fdata(), atol=0.51)


@pytest.mark.parametrize("compress", ["rle", "jpeg-lossless"])
def test_compressed_pixel_data(tmp_path: Path, compress: str) -> None:
    if compress == "jpeg-lossless":
        pytest.importorskip("gdcm", reason="python-gdcm (the dicom extra) decodes and writes JPEG")
    array, affine, folder = _series(tmp_path, "oblique", compress=compress)
    [series] = read_dicom_folder(folder)
    np.testing.assert_allclose(series.volume.affine, affine, atol=1e-4)
    np.testing.assert_allclose(series.volume.data, array, atol=0.5)


def test_files_without_preamble_or_file_meta(tmp_path: Path) -> None:
    array, affine, folder = _series(tmp_path, "coronal")
    for path in folder.glob("*.dcm"):  # rewrite as bare implicit-VR little-endian data sets (ACR-NEMA style)
        ds = dcmread(path)
        out = DicomBytesIO()
        out.is_little_endian, out.is_implicit_VR = True, True
        write_dataset(out, ds)
        path.write_bytes(out.getvalue())
    [series] = read_dicom_folder(folder)
    np.testing.assert_allclose(series.volume.affine, affine, atol=1e-4)
    np.testing.assert_allclose(series.volume.data, array, atol=0.5)


def test_enhanced_multiframe(tmp_path: Path) -> None:
    array, affine, folder = _series(tmp_path, "oblique", multiframe=True, slope=2.0)
    [series] = read_dicom_folder(folder)
    np.testing.assert_allclose(series.volume.affine, affine, atol=1e-4)
    np.testing.assert_allclose(series.volume.data, array, atol=1.01)
    assert sorted(series.uids.frame_numbers) == list(range(1, SHAPE[2] + 1))
    assert len(set(series.uids.sop_instance_uids)) == 1


def test_groups_studies_and_series_and_keeps_identifiers(tmp_path: Path) -> None:
    affine = grid_affine("axial", SHAPE, SPACING)
    array = phantom(affine, SHAPE)
    t1 = write_series(tmp_path / "study1" / "s1", array, affine, series_number=3, seed=1)
    flair_fields = {
        "ScanningSequence": "SE\\IR",
        "RepetitionTime": 9000,
        "EchoTime": 120,
        "InversionTime": 2500,
    }
    flair = write_series(
        tmp_path / "study1" / "deep" / "s2",
        array,
        affine,
        description="AX FLAIR",
        series_number=5,
        fields=flair_fields,
        study_uid=t1.study_uid,
        gzip=True,
    )
    other = write_series(
        tmp_path / "study2",
        array,
        affine,
        description="t2_tse_tra",
        series_number=2,
        fields={"ScanningSequence": "SE", "RepetitionTime": 5000, "EchoTime": 100},
    )
    (tmp_path / "notes.txt").write_text("not dicom")
    (tmp_path / "study1" / "DICOMDIR.json").write_bytes(b"\x00" * 300)

    found = read_dicom_folder(tmp_path)
    assert [s.series_number for s in found] == [2, 3, 5]
    assert [s.sequence for s in found] == ["t2", "t1", "flair"]
    assert found[0].uids.study_instance_uid == other.study_uid
    assert found[1].uids.study_instance_uid == found[2].uids.study_instance_uid == t1.study_uid
    t1_series = found[1]
    assert t1_series.uids.series_instance_uid == t1.series_uid
    assert t1_series.uids.frame_of_reference_uid == t1.frame_uid
    assert list(t1_series.uids.sop_instance_uids) == t1.sop_uids  # in slice order
    assert t1_series.uids.sop_class_uid == "1.2.840.10008.5.1.4.1.1.4"
    assert t1_series.patient_study.PatientID == "SYNTH01"
    assert t1_series.volume.meta["series_instance_uid"] == t1.series_uid
    assert t1_series.volume.meta["sequence"] == "t1"
    assert len(t1_series.headers) == SHAPE[2]
    assert flair.series_uid == found[2].uids.series_instance_uid


def test_user_overrides_the_sequence(tmp_path: Path) -> None:
    _, _, folder = _series(tmp_path, description="series 9", fields={}, series_number=9)
    [auto] = read_dicom_folder(folder)
    assert (auto.sequence, auto.confidence) == ("other", 0.0)
    [forced] = read_dicom_folder(folder, sequences={"9": "FLAIR"})
    assert (forced.sequence, forced.confidence, forced.reason) == ("flair", 1.0, "set by the user")
    assert forced.volume.meta["sequence"] == "flair"
    with pytest.raises(InputError, match="match no series"):
        read_dicom_folder(folder, sequences={"42": "t1"})
    with pytest.raises(InputError, match="unknown sequence"):
        auto.with_sequence("dwi")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skip_slices": [7]}, "missing slice"),
        ({"shift_slices": {6: 1.0}}, "uneven slice spacing"),
        ({"orientation": [1, 0, 0, 0.2, 1, 0]}, "not two orthonormal"),
    ],
)
def test_defective_series_raise_naming_the_series(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    _, _, folder = _series(tmp_path, **kwargs)
    with pytest.raises(InputError, match=message) as err:
        read_dicom_folder(folder)
    assert str(folder) in str(err.value) and "t1_mprage_sag" in str(err.value)


def test_defective_series_can_be_skipped(tmp_path: Path) -> None:
    affine = grid_affine("axial", SHAPE, SPACING)
    write_series(tmp_path / "good", phantom(affine, SHAPE), affine, series_number=1)
    write_series(tmp_path / "bad", phantom(affine, SHAPE), affine, series_number=2, skip_slices=[4])
    assert [s.series_number for s in read_dicom_folder(tmp_path, on_error="skip")] == [1]


def test_multi_volume_series_raise_when_ours_and_are_skipped_otherwise(tmp_path: Path) -> None:
    affine = grid_affine("axial", SHAPE, SPACING)
    array = phantom(affine, SHAPE)
    for name, number in (("ep2d_diff_trace", 4), ("t2_tse_tra", 5)):
        first = write_series(tmp_path / name / "b0", array, affine, description=name, series_number=number)
        write_series(tmp_path / name / "b1", array, affine, description=name, series_uid=first.series_uid)
    write_series(tmp_path / "t1", array, affine, series_number=1)
    with pytest.raises(InputError, match="t2_tse_tra.*share a position"):
        read_dicom_folder(tmp_path)
    shutil.rmtree(tmp_path / "t2_tse_tra")
    [t1] = read_dicom_folder(tmp_path)  # the diffusion series is logged and left out
    assert t1.summary()["sequence"] == "t1" and t1.summary()["shape"] == list(SHAPE)


def test_absurd_voxel_size(tmp_path: Path) -> None:
    affine = grid_affine("axial", SHAPE, (1.0, 1.0, 80.0))
    write_series(tmp_path, phantom(affine, SHAPE), affine)
    with pytest.raises(InputError, match=r"slice spacing is 80 mm; expected 0.05 to 30 mm"):
        read_dicom_folder(tmp_path)


def test_single_slice_and_localizers_are_not_volumes(tmp_path: Path) -> None:
    affine = grid_affine("axial", (16, 16, 1), (1.0, 1.0, 1.0))
    write_series(tmp_path / "one", np.ones((16, 16, 1)), affine, description="single")
    with pytest.raises(InputError, match=r"no usable 3D image series.*1 slice\(s\), not a 3D volume"):
        read_dicom_folder(tmp_path / "one")
    scout = grid_affine("sagittal", (16, 16, 5), (1.0, 1.0, 5.0))
    write_series(tmp_path / "scout", np.ones((16, 16, 5)), scout, description="AAHead_Scout")
    with pytest.raises(InputError, match="localizer"):
        read_dicom_folder(tmp_path / "scout")


def test_corrupt_and_truncated_files_name_the_file(tmp_path: Path) -> None:
    _, _, folder = _series(tmp_path)
    victim = sorted(folder.glob("*.dcm"))[3]
    victim.write_bytes(victim.read_bytes()[:-500])
    with pytest.raises(InputError, match=f"{victim.name}.*pixel data"):
        read_dicom_folder(folder)
    victim.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    with pytest.raises(InputError, match=f"{victim.name}.*corrupt DICOM"):
        read_dicom_folder(folder)
    victim.with_suffix(".dcm.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    victim.unlink()
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        read_dicom_folder(folder)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no usable 3D image series \(1 file\(s\): 1 not DICOM, 0 DICOM"):
        read_dicom_folder(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        read_dicom_folder(tmp_path / "missing")


def test_stack_geometry_orders_along_the_normal_and_detects_shear() -> None:
    positions = np.array([[0.0, 0.0, z] for z in (4.0, 0.0, 2.0, 6.0)])
    order, affine = stack_geometry(positions, [1, 0, 0, 0, 1, 0], [0.5, 0.75], "s")
    assert order.tolist() == [1, 2, 0, 3]
    np.testing.assert_allclose(affine[:3, :3], np.diag([-0.75, -0.5, 2.0]))
    sheared = positions + np.array([[0.0, 1.0, 0.0]]) * positions[:, 2:] / 2
    with pytest.raises(InputError, match="gantry tilt"):
        stack_geometry(sheared, [1, 0, 0, 0, 1, 0], [0.5, 0.75], "s")
