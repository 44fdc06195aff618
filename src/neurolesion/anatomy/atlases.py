"""Read the MNI template and the atlases shipped in the nilearn and deepmriprep wheels.

Only this module needs nibabel; everything downstream works from the derived arrays (see
`anatomy.template`). Every atlas is brought onto the template grid with nearest-neighbour resampling
through its own affine (the deepmriprep atlases are stored x-flipped, on another box).

Example:
    >>> grid = template_grid()  # doctest: +SKIP
    >>> nm = load_atlas("neuromorphometrics", grid)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from neurolesion.errors import InputError


@dataclass(frozen=True)
class TemplateGrid:
    """The MNI ICBM152 2009 template: T1 intensities and grey/white matter probabilities on its grid.

    Attributes:
        t1: (X, Y, Z) float32 T1 template, 0 outside the brain (the nilearn copy is skull-stripped).
        gm: grey matter probability in [0, 1].
        wm: white matter probability in [0, 1].
        affine: 4x4 voxel-to-MNI mm matrix (1 mm, RAS).
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        x, y, z = self.t1.shape
        return (int(x), int(y), int(z))


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise InputError(
            f"package {name!r} is not installed; it ships the anatomy templates the simulator needs"
        )
    return Path(spec.origin).parent


def nilearn_data_dir() -> Path:
    """Folder of the nilearn wheel holding the MNI152 2009 templates."""
    return _package_dir("nilearn") / "datasets" / "data"


def deepmriprep_atlas_dir() -> Path:
    """Folder of the deepmriprep wheel holding the atlases (NIfTI + CSV of region names)."""
    return _package_dir("deepmriprep") / "data" / "templates"


def template_grid() -> TemplateGrid:
    """Load the MNI ICBM152 2009c symmetric T1, GM and WM maps from the nilearn wheel.

    Raises:
        InputError: a template file is missing.
    """
    import nibabel as nib

    folder = nilearn_data_dir()
    arrays = {}
    affine = np.eye(4)
    for key in ("t1", "gm", "wm"):
        path = folder / f"mni_icbm152_{key}_tal_nlin_sym_09a_converted.nii.gz"
        if not path.exists():
            raise InputError(f"{path}: MNI template missing from the nilearn wheel; expected it there")
        img = nib.nifti1.load(path)
        arrays[key] = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        affine = np.asarray(img.affine, dtype=np.float64)
    return TemplateGrid(arrays["t1"], arrays["gm"], arrays["wm"], affine)


def load_atlas(name: str, grid: TemplateGrid) -> np.ndarray:
    """A deepmriprep atlas resampled onto the template grid (nearest neighbour), as int32 labels.

    Args:
        name: atlas file stem in deepmriprep/data/templates (neuromorphometrics, hammers, mori, suit, ...).
        grid: the target grid.

    Raises:
        InputError: the atlas file is missing.
    """
    import nibabel as nib

    path = deepmriprep_atlas_dir() / f"{name}.nii.gz"
    if not path.exists():
        raise InputError(f"{path}: atlas {name!r} missing from the deepmriprep wheel")
    img = nib.nifti1.load(path)
    data = np.asarray(img.dataobj).astype(np.int32)
    if data.ndim == 4:
        data = data[..., 0]
    vox_to_vox = np.linalg.inv(np.asarray(img.affine, dtype=np.float64)) @ grid.affine
    return ndimage.affine_transform(
        data, vox_to_vox[:3, :3], vox_to_vox[:3, 3], output_shape=grid.shape, order=0, mode="constant"
    )


def atlas_names(name: str) -> dict[int, str]:
    """Region id -> region name of a deepmriprep atlas, from its CSV (``ROIid`` and ``ROIname`` columns).

    Raises:
        InputError: the CSV is missing or lacks those columns.
    """
    path = deepmriprep_atlas_dir() / f"{name}.csv"
    if not path.exists():
        raise InputError(f"{path}: region table of atlas {name!r} missing")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    if not rows or "ROIid" not in rows[0] or "ROIname" not in rows[0]:
        raise InputError(f"{path}: expected ';'-separated columns ROIid and ROIname")
    return {int(r["ROIid"]): r["ROIname"] for r in rows}


def ids_matching(names: dict[int, str], *words: str) -> list[int]:
    """Ids whose name contains any of `words` (case-insensitive).

    Example:
        >>> ids_matching({1: "Left Putamen", 2: "Right Caudate"}, "putamen")
        [1]
    """
    low = [w.lower() for w in words]
    return sorted(i for i, n in names.items() if any(w in n.lower() for w in low))
