"""Training data: whole cases in memory, patch sampling around lesions, and the toy "blobs" cases.

A case is a normalised multi-channel image with binary per-task labels and a brain mask (`CaseArrays`).
Cases come from a folder written by ``neurolesion synth`` (or real annotated data in the same layout:
``<seq>.nii.gz``, ``brain_mask.nii.gz``, ``<task>_labels.nii.gz``) or from `blob_case` (spheres in
smooth noise, for tests and smoke runs). `sample_patch` draws one training patch: with probability
``lesion_prob`` its centre is a lesion voxel (class-balanced: the task is chosen first, uniformly among
those with lesions; lesion-balanced: one of its lesions is chosen uniformly, then its voxel, so that
small lesions next to a large one are centred as often), otherwise, with ``negative_prob``, a hard-negative voxel (the brain's border with the
CSF in a simulated case's ``anatomy.nii.gz``, where partial volume mimics lesions), else any brain voxel.

Example:
    >>> rng = np.random.default_rng(0)
    >>> case = blob_case(rng, (32, 32, 32), ("flair",), ("wmh",))
    >>> patch = sample_patch(case, rng, (16, 16, 16), lesion_prob=1.0)
    >>> patch["image"].shape, patch["label"].shape, bool(patch["label"].any())
    ((1, 16, 16, 16), (1, 16, 16, 16), True)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cc3d
import numpy as np
import torch
from scipy import ndimage

from neurolesion.errors import InputError
from neurolesion.infer.predict import resize_to_spacing
from neurolesion.io.nifti import load_nifti
from neurolesion.preprocess.normalize import normaliser
from neurolesion.train import tissues

log = logging.getLogger(__name__)

Patch = dict[str, Any]


@dataclass(frozen=True, eq=False)
class CaseArrays:
    """One training or validation case, normalised, on one grid.

    Attributes:
        name: case identifier (folder name).
        image: (C, X, Y, Z) float32, z-scored inside the brain; missing sequences are zeros.
        present: (C,) which channels hold real data.
        label: (K, X, Y, Z) uint8 binary lesion masks, one per task.
        brain: (X, Y, Z) brain mask.
        spacing: voxel size, mm.
        lesion_count: number of lesions (all tasks).
        lesion_volume_ml: total lesion volume (all tasks).
        negatives: flat indices of the hard-negative voxels (`load_case_folder` ``negative_codes``).
        tissue: (X, Y, Z) coarse tissue classes (`neurolesion.train.tissues`) when loaded with ``tissue``.
        tissue_moments: (C, N_CLASSES, 3) per-class brain moments of ``image`` that go with ``tissue``.
    """

    name: str
    image: np.ndarray
    present: np.ndarray
    label: np.ndarray
    brain: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    lesion_count: int = 0
    lesion_volume_ml: float = 0.0
    negatives: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    tissue: np.ndarray | None = field(default=None, repr=False)
    tissue_moments: np.ndarray | None = field(default=None, repr=False)
    _foreground: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _lesions: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def foreground(self, task: int) -> np.ndarray:
        """Flat indices of the lesion voxels of one task (computed once)."""
        if task not in self._foreground:
            self._foreground[task] = np.flatnonzero(self.label[task])
        return self._foreground[task]

    def lesions(self, task: int) -> list[np.ndarray]:
        """Flat indices of the voxels of each lesion (26-connected component) of one task (computed once)."""
        if task not in self._lesions:
            components = cc3d.connected_components(np.ascontiguousarray(self.label[task]), connectivity=26)
            found = ndimage.value_indices(components.ravel(), ignore_value=0)
            self._lesions[task] = [found[k][0] for k in sorted(found)]
        return self._lesions[task]


def blob_case(
    rng: np.random.Generator,
    shape: Sequence[int],
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str = "blobs",
) -> CaseArrays:
    """A toy case: an ellipsoidal "brain" of smooth noise with spherical lesions of each task.

    Task ``k``'s lesions are bright in channel ``k % C`` (and dark for odd ``k``) with radii 1-5 voxels,
    so a network must learn both large and tiny lesions of either sign.

    Args:
        rng: random generator.
        shape: spatial shape.
        inputs: channel names (only their count matters).
        outputs: task names (only their count matters).
        name: case name.

    Returns:
        The case.
    """
    shape3 = tuple(int(s) for s in shape)
    grid = np.indices(shape3, dtype=np.float32)
    centre = np.asarray(shape3, np.float32)[:, None, None, None] / 2
    radii = np.asarray(shape3, np.float32)[:, None, None, None] * 0.42
    brain = (((grid - centre) / radii) ** 2).sum(0) <= 1.0
    n_in, n_out = len(inputs), len(outputs)
    image = np.stack(
        [
            ndimage.gaussian_filter(rng.normal(size=shape3), 2.0) * 3 + rng.normal(size=shape3) * 0.5
            for _ in range(n_in)
        ]
    ).astype(np.float32)
    label = np.zeros((n_out, *shape3), np.uint8)
    inside = np.argwhere(brain)
    count = 0
    for k in range(n_out):
        for _ in range(int(rng.integers(1, 6))):
            count += 1
            c = inside[rng.integers(len(inside))]
            r = float(rng.uniform(1.0, 5.0))
            ball = ((grid - c[:, None, None, None]) ** 2).sum(0) <= r * r
            label[k][ball & brain] = 1
        sign = -1.0 if k % 2 else 1.0
        image[k % n_in][label[k] > 0] += sign * float(rng.uniform(2.0, 3.0))
    image[:, ~brain] = -3.0
    return CaseArrays(
        name=name,
        image=image,
        present=np.ones(n_in, bool),
        label=label,
        brain=brain,
        lesion_count=count,
        lesion_volume_ml=float(label.sum()) / 1000.0,
    )


def load_case_folder(
    folder: str | Path,
    inputs: Sequence[str],
    outputs: Sequence[str],
    normalisation: str = "zscore-brain",
    spacing: Sequence[float] | None = None,
    negative_codes: Sequence[int] = (),
    negative_inside_codes: Sequence[int] = (),
    tissue: bool = False,
) -> CaseArrays:
    """Read a case folder (``<seq>.nii.gz``, ``brain_mask.nii.gz``, ``<task>_labels.nii.gz``).

    Sequences in ``inputs`` that are missing become zero channels with ``present`` False; a missing
    ``<task>_labels.nii.gz`` means no lesions of that task, except for the task ``brain``, whose label is
    the brain mask. Images are normalised as named (default: percentile-clipped and z-scored inside the
    brain mask, ``zscore-brain``), then, when ``spacing`` is given, everything is resampled to that voxel
    size the way `predict_volume` resamples (images trilinearly; masks and labels trilinearly, cut at 0.5).

    Args:
        folder: the case folder.
        inputs: sequences in channel order.
        outputs: tasks in channel order.
        normalisation: a name from `neurolesion.preprocess.normalize.NORMALISATIONS`.
        spacing: voxel size (mm) to resample to; None keeps the case's grid.
        negative_codes: anatomy codes (`neurolesion.anatomy.labels.Tissue`) whose 2-voxel border inside the
            brain holds the hard negatives, read from ``anatomy.nii.gz`` (none when the folder has none).
        negative_inside_codes: anatomy codes whose whole region inside the brain holds hard negatives too.
        tissue: also read the coarse tissue classes from ``anatomy.nii.gz`` and their intensity moments,
            for the tissue-contrast augmentation (`AugmentConfig.p_tissue`).

    Returns:
        The case.

    Raises:
        InputError: no brain mask, none of the inputs present, images on different grids, an unknown
            normalisation, or ``tissue`` without an ``anatomy.nii.gz`` on the case's grid.
    """
    normalise = normaliser(normalisation, str(folder))
    d = Path(folder)
    mask_path = d / "brain_mask.nii.gz"
    if not mask_path.is_file():
        raise InputError(f"{d}: case folder has no brain_mask.nii.gz")
    mask_vol = load_nifti(mask_path, label=True)
    brain = mask_vol.data > 0
    channels, present = [], []
    for seq in inputs:
        p = d / f"{seq}.nii.gz"
        if p.is_file():
            vol = load_nifti(p)
            if vol.shape != mask_vol.shape:
                raise InputError(f"{p}: shape {vol.shape} differs from the brain mask {mask_vol.shape}")
            channels.append(normalise(vol, brain).data)
            present.append(True)
        else:
            channels.append(np.zeros(mask_vol.shape, np.float32))
            present.append(False)
    if not any(present):
        raise InputError(f"{d}: none of the input sequences {', '.join(inputs)} is present")
    labels, count = [], 0
    for task in outputs:
        p = d / f"{task}_labels.nii.gz"
        if p.is_file():
            ids = load_nifti(p, label=True).data
        else:
            ids = brain.astype(np.float32) if task == "brain" else np.zeros(mask_vol.shape, np.float32)
        if ids.shape != mask_vol.shape:
            raise InputError(f"{p}: shape {ids.shape} differs from the brain mask {mask_vol.shape}")
        count += len(np.unique(ids[ids > 0]))
        labels.append(ids > 0)
    image, label = np.stack(channels).astype(np.float32), np.stack(labels).astype(np.uint8)
    border = _hard_negatives(d / "anatomy.nii.gz", negative_codes, negative_inside_codes, brain)
    classes = _tissue(d / "anatomy.nii.gz", brain.shape) if tissue else None
    grid_spacing = mask_vol.spacing
    if spacing is not None and not np.allclose(spacing, grid_spacing, atol=1e-3):
        image = resize_to_spacing(image, grid_spacing, spacing)
        stacked = np.concatenate([brain[None], border[None], label])
        masks = resize_to_spacing(stacked, grid_spacing, spacing) >= 0.5
        brain, border, label = masks[0], masks[1], masks[2:].astype(np.uint8)
        if classes is not None:
            classes = _nearest_resize(classes, brain.shape)
        grid_spacing = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    moments = None if classes is None else tissues.class_moments(image, classes, brain)
    voxel_ml = float(np.prod(grid_spacing)) / 1000.0
    return CaseArrays(
        name=d.name,
        image=image,
        present=np.asarray(present),
        label=label,
        brain=brain,
        spacing=grid_spacing,
        lesion_count=count,
        lesion_volume_ml=float(label.sum()) * voxel_ml,
        negatives=np.flatnonzero(border),
        tissue=classes,
        tissue_moments=moments,
    )


def _tissue(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Coarse tissue classes of a case folder's anatomy map."""
    if not path.is_file():
        raise InputError(
            f"{path}: missing; the tissue-contrast augmentation needs the simulator's anatomy map"
        )
    anatomy = load_nifti(path, label=True).data
    if anatomy.shape != shape:
        raise InputError(f"{path}: shape {anatomy.shape} differs from the brain mask {shape}")
    return tissues.tissue_classes(anatomy)


def _nearest_resize(labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A label map resampled to `shape` (same extent) by nearest neighbour, on `resize_to_shape`'s grid."""
    t = torch.as_tensor(labels[None, None].astype(np.float32))
    out = torch.nn.functional.interpolate(t, size=tuple(int(n) for n in shape), mode="nearest-exact")
    return out[0, 0].numpy().astype(np.uint8)


def _hard_negatives(
    path: Path, border_codes: Sequence[int], inside_codes: Sequence[int], brain: np.ndarray
) -> np.ndarray:
    """Brain voxels within 2 voxels of (outside) an anatomy region in ``border_codes``, or inside one in
    ``inside_codes`` (all False without codes or file)."""
    if not (border_codes or inside_codes) or not path.is_file():
        return np.zeros(brain.shape, bool)
    anatomy = load_nifti(path, label=True).data
    if anatomy.shape != brain.shape:
        raise InputError(f"{path}: shape {anatomy.shape} differs from the brain mask {brain.shape}")
    region = np.isin(anatomy, list(border_codes))
    border = ndimage.binary_dilation(region, iterations=2) & ~region
    return (border | np.isin(anatomy, list(inside_codes))) & brain


def case_folders(root: str | Path) -> list[Path]:
    """Sub-folders of ``root`` that hold a case (a ``brain_mask.nii.gz``), sorted by name.

    Raises:
        InputError: ``root`` is not a folder or holds no case.
    """
    r = Path(root)
    if not r.is_dir():
        raise InputError(f"{r}: case folder root not found")
    found = sorted(p for p in r.iterdir() if (p / "brain_mask.nii.gz").is_file())
    if not found:
        raise InputError(f"{r}: no case sub-folders with brain_mask.nii.gz")
    return found


def _centre(
    case: CaseArrays,
    rng: np.random.Generator,
    lesion_prob: float,
    class_balanced: bool,
    negative_prob: float = 0.0,
    lesion_balanced: bool = False,
) -> np.ndarray:
    shape = case.brain.shape
    if rng.random() < lesion_prob:
        tasks = [k for k in range(case.label.shape[0]) if case.foreground(k).size]
        if tasks:
            if lesion_balanced:
                chosen = [int(rng.choice(tasks))] if class_balanced else tasks
                lesions = [les for k in chosen for les in case.lesions(k)]
                fg = lesions[int(rng.integers(len(lesions)))]
            elif class_balanced:
                fg = case.foreground(int(rng.choice(tasks)))
            else:
                fg = np.concatenate([case.foreground(k) for k in tasks])
            return np.asarray(np.unravel_index(int(fg[rng.integers(fg.size)]), shape))
    if negative_prob > 0 and case.negatives.size and rng.random() < negative_prob:
        return np.asarray(np.unravel_index(int(case.negatives[rng.integers(case.negatives.size)]), shape))
    inside = np.flatnonzero(case.brain) if case.brain.any() else np.arange(case.brain.size)
    return np.asarray(np.unravel_index(int(inside[rng.integers(inside.size)]), shape))


def sample_patch(
    case: CaseArrays,
    rng: np.random.Generator,
    patch_size: Sequence[int],
    lesion_prob: float = 0.5,
    class_balanced: bool = True,
    one_sequence: bool = False,
    negative_prob: float = 0.0,
    lesion_balanced: bool = False,
) -> Patch:
    """Cut one training patch from a case.

    Args:
        case: the case.
        rng: random generator.
        patch_size: spatial size of the patch.
        lesion_prob: probability that the centre is a lesion voxel.
        class_balanced: choose the task first (uniformly among those with lesions).
        one_sequence: the patch has a single channel: one of the case's present sequences, chosen at
            random (for contrast-agnostic `ModelConfig.any_input` networks).
        negative_prob: probability that a centre not on a lesion is a hard negative (``case.negatives``).
        lesion_balanced: a lesion centre is drawn from a lesion chosen uniformly (``case.lesions``),
            not from all lesion voxels at once.

    Returns:
        ``{"image": (C, *patch), "label": (K, *patch) uint8, "present": (C,) bool}`` (C = 1 with
        ``one_sequence``); parts outside the volume are padded with each channel's minimum (image) and 0
        (label).
    """
    size = np.asarray(patch_size, int)
    centre = _centre(case, rng, lesion_prob, class_balanced, negative_prob, lesion_balanced)
    channels = slice(None)
    if one_sequence:
        present = np.flatnonzero(case.present)
        pick = int(present[rng.integers(present.size)])
        channels = slice(pick, pick + 1)
    start = centre - size // 2
    shape = np.asarray(case.brain.shape)
    lo = np.clip(start, 0, shape)
    hi = np.clip(start + size, 0, shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    pad = [(0, 0)] + [(int(a - s), int(s + n - b)) for a, b, s, n in zip(lo, hi, start, size, strict=True)]
    image = case.image[(channels, *sl)]
    label = case.label[(slice(None), *sl)]
    padded = any(p != (0, 0) for p in pad)
    if padded:
        image = np.stack([np.pad(c, pad[1:], constant_values=float(c.min(initial=0.0))) for c in image])
        label = np.pad(label, pad)
    patch: Patch = {
        "image": image.astype(np.float32),
        "label": label.astype(np.uint8),
        "present": case.present[channels].copy(),
    }
    if case.tissue is not None and case.tissue_moments is not None:
        classes = case.tissue[sl]
        patch["tissue"] = np.pad(classes, pad[1:]) if padded else classes
        patch["tissue_moments"] = case.tissue_moments[channels]
    return patch
