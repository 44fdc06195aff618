"""`prepare(case)`: the whole pre-processing chain, and the way back to the native grid.

Steps: check every image (geometry, NaN/Inf, constant) -> reorient to RAS (exact) -> N4 bias correction
(optional) -> model grid = the reference sequence in RAS at `spacing` -> rigid registration of every other
sequence to the reference (optional) -> every image onto the model grid in one interpolation -> brain
extraction -> percentile clipping and z-score inside the brain. `Prepared.to_native` maps any array on the
model grid back to the reference's native grid (same shape and affine as the input file).

Example:
    >>> prepared = prepare(case)  # doctest: +SKIP
    >>> probability = model(np.stack([prepared.images[s] for s in ("flair", "t1")]))  # doctest: +SKIP
    >>> on_input_grid = prepared.to_native(probability, order="linear")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from neurolesion.errors import InputError
from neurolesion.io.case import Case
from neurolesion.io.nifti import check_geometry, check_intensities
from neurolesion.preprocess.bias import n4_correct
from neurolesion.preprocess.brain import extract_brain
from neurolesion.preprocess.normalize import normaliser, normalize, parenchyma, statistics_mask
from neurolesion.preprocess.orientation import axcodes, reorient
from neurolesion.preprocess.registration import RigidTransform, head_mask, register_rigid
from neurolesion.preprocess.resample import Grid, Order, grid_for_spacing, resample
from neurolesion.volume import Volume

log = logging.getLogger(__name__)

#: A registration beyond these is reported in `Prepared.warnings` (patient moved a lot, or it failed).
LARGE_ROTATION_DEG = 15.0
LARGE_TRANSLATION_MM = 20.0
#: A sequence covering less than this fraction of the reference's head is reported.
MIN_COVERAGE = 0.8
#: A registration lowering the NMI by more than this fraction is reported. Small drops are expected when
#: the scanner alignment is already right: at identity on coinciding grids NMI is inflated by the absence of
#: interpolation blur.
NMI_DROP = 0.1


@dataclass(frozen=True, eq=False)
class Prepared:
    """What the models get from `prepare`, and the way back to the input grids.

    Attributes:
        images: sequence -> (X, Y, Z) float32 on the model grid, z-scored with the brain's tissue statistics.
        brain_mask: bool (X, Y, Z) on the model grid.
        grid: the model grid (the reference sequence in RAS at the requested spacing).
        registration: sequence -> rigid transform (model-grid world point -> that sequence's world point)
            with its quality figures; identity for the reference.
        timings: seconds per step.
        warnings: human-readable problems worth a look (poor registration, small coverage).
        reference: the reference sequence.
        native: sequence -> its native grid (as read), used by `to_native` and `to_sequence`.
        native_codes: sequence -> its native axis codes.
        resampled: sequence -> (X, Y, Z) float32 on the model grid before normalisation, for models
            trained with another normalisation (see `normalised`).
        statistics_mask: where the normalisation statistics come from: the region of the brain mask
            whose statistics match the training masks' (`neurolesion.preprocess.normalize.statistics_mask`);
            None: the brain mask.
        tissue_mask: the brain mask less its CSF (`neurolesion.preprocess.normalize.parenchyma`), which
            the false-positive rule of extra-axial tasks judges against; None: the brain mask.
    """

    images: dict[str, np.ndarray]
    brain_mask: np.ndarray
    grid: Grid
    registration: dict[str, RigidTransform]
    timings: dict[str, float]
    warnings: list[str]
    reference: str
    native: dict[str, Grid] = field(default_factory=dict)
    native_codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    resampled: dict[str, np.ndarray] = field(default_factory=dict)
    statistics_mask: np.ndarray | None = None
    tissue_mask: np.ndarray | None = None

    @property
    def statistics(self) -> np.ndarray:
        """The mask the normalisation statistics come from."""
        return self.brain_mask if self.statistics_mask is None else self.statistics_mask

    @property
    def tissue(self) -> np.ndarray:
        """The brain less its CSF: what the extra-axial false-positive rule judges against."""
        return self.brain_mask if self.tissue_mask is None else self.tissue_mask

    def normalised(
        self, name: str, statistics: np.ndarray | None = None, sequences: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The images under the normalisation a model card names (``images`` for ``zscore-brain``).

        Only the sequences asked for are normalised (a model's inputs), and nothing is kept: a case's models
        rarely share both a normalisation and a sequence (the tumour and cavernoma models share
        ``zscore-brain-unclipped`` but no input), and keeping the arrays cost 0.15 GB of peak memory.

        Args:
            name: a name from `neurolesion.preprocess.normalize.NORMALISATIONS`.
            statistics: another mask to take the statistics from (default: `statistics`).
            sequences: the sequences wanted (a model's inputs; those the case lacks are left out); all
                when None.

        Returns:
            sequence -> (X, Y, Z) float32 on the model grid.

        Raises:
            InputError: an unknown name, or a Prepared made without its un-normalised images.
        """
        wanted = [s for s in (self.images if sequences is None else sequences) if s in self.images]
        if name == "zscore-brain" and statistics is None:
            return self.images if sequences is None else {seq: self.images[seq] for seq in wanted}
        normalise = normaliser(name)
        mask = self.statistics if statistics is None else statistics
        if set(self.resampled) != set(self.images):
            raise InputError(f"normalisation {name!r} needs the un-normalised images, which were not kept")
        return {
            seq: normalise(Volume(self.resampled[seq], self.grid.affine, seq), mask).data.astype(np.float32)
            for seq in wanted
        }

    def to_sequence(self, array: np.ndarray, seq: str, *, order: Order = "linear") -> np.ndarray:
        """Map an (X, Y, Z) array on the model grid onto sequence `seq`'s native grid.

        Args:
            array: values on the model grid (probabilities, masks, labels).
            seq: a sequence of the case.
            order: "linear" for probabilities and images, "nearest" or "label" for masks and label maps.

        Returns:
            (X, Y, Z) float32 array with the shape of the native `seq` image.

        Raises:
            ValueError: unknown sequence, or an array not on the model grid.
        """
        if seq not in self.native:
            raise ValueError(f"sequence {seq!r} is not in this case ({sorted(self.native)})")
        on_model = Volume(np.asarray(array, dtype=np.float32), self.grid.affine)
        if on_model.shape != self.grid.shape:
            raise ValueError(f"array shape {on_model.shape} differs from the model grid {self.grid.shape}")
        native = self.native[seq]
        ras = reorient(Volume(np.zeros(native.shape, np.float32), native.affine), "RAS")
        inverse = np.linalg.inv(self.registration[seq].matrix)
        identity = np.allclose(inverse, np.eye(4), atol=1e-9)
        on_ras = resample(
            on_model, Grid.of(ras), order=order, transform=None if identity else inverse, extend_edges=True
        )
        back = reorient(on_ras, self.native_codes[seq])
        if not Grid.of(back).same_as(native, atol=1e-3):
            raise RuntimeError(
                f"mapping to the native {seq} grid lost the geometry: {back.affine} vs {native.affine}"
            )
        return back.data

    def to_native(self, array: np.ndarray, *, order: Order = "linear") -> np.ndarray:
        """Map an (X, Y, Z) array on the model grid onto the reference's native grid (exact shape/affine).

        Example:
            >>> labels = prepared.to_native(model_labels, order="nearest")  # doctest: +SKIP
        """
        return self.to_sequence(array, self.reference, order=order)

    def native_brain_mask(self) -> np.ndarray:
        """The brain mask on the reference's native grid (bool)."""
        return self.to_native(self.brain_mask.astype(np.float32), order="linear") >= 0.5

    def native_tissue_mask(self) -> np.ndarray:
        """The tissue mask (the brain less its CSF) on the reference's native grid (bool)."""
        return self.to_native(self.tissue.astype(np.float32), order="linear") >= 0.5


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - start, 3)


def check_volume(volume: Volume) -> None:
    """Reject an image the chain cannot use: absurd geometry, NaN/Inf, constant.

    Raises:
        InputError: naming the file and the problem (also for a multi-channel image).
    """
    name = volume.name or "image"
    if volume.channels != 1:
        raise InputError(f"{name}: image has {volume.channels} channels; expected one 3D image per sequence")
    check_geometry(volume.affine, volume.shape, name)
    check_intensities(volume.array, name)


def _registration_warnings(seq: str, reference: str, transform: RigidTransform) -> list[str]:
    problems = []
    if transform.rotation_deg > LARGE_ROTATION_DEG or transform.translation_mm > LARGE_TRANSLATION_MM:
        problems.append(
            f"{seq} -> {reference}: large registration ({transform.rotation_deg:.1f} deg, "
            f"{transform.translation_mm:.1f} mm); check the alignment"
        )
    if transform.nmi_after < (1 - NMI_DROP) * transform.nmi_before:
        problems.append(
            f"{seq} -> {reference}: registration lowered the normalised mutual information "
            f"({transform.nmi_before:.3f} -> {transform.nmi_after:.3f}); check the alignment"
        )
    return problems


class BrainMasks(NamedTuple):
    """The masks `prepare` derives from brain extraction (boolean, on the images' grid).

    Attributes:
        brain: `extract_brain`'s mask: post-processing's parenchyma mask and the analysis's brain.
        tissue: ``brain`` less its CSF (`neurolesion.preprocess.normalize.parenchyma`): what the
            extra-axial false-positive rule judges against.
        statistics: where the normalisation statistics come from
            (`neurolesion.preprocess.normalize.statistics_mask`).
    """

    brain: np.ndarray
    tissue: np.ndarray
    statistics: np.ndarray


def brain_masks(
    images: Mapping[str, Volume], method: str = "auto", brain: np.ndarray | None = None
) -> BrainMasks:
    """The brain mask of co-registered images, that mask less its CSF, and where their statistics come from.

    Args:
        images: sequence -> Volume, all on one grid, the reference sequence first.
        method: brain extraction method ("auto", or a name from `brain.available_methods()`).
        brain: a brain mask extracted before (boolean, same grid): only the other two are derived.

    Returns:
        The BrainMasks.

    Raises:
        InputError: unknown method, or no brain found.
        ValueError: images on different grids, or ``brain`` on another grid.

    Example:
        >>> masks = brain_masks({"flair": flair, "t1": t1})  # doctest: +SKIP
    """
    first = next(iter(images.values()))
    if brain is None:
        brain = extract_brain(images, method)
    elif brain.shape != first.shape:
        raise ValueError(f"brain mask shape {brain.shape} differs from the images' grid {first.shape}")
    brain = np.asarray(brain, bool)
    arrays = {seq: volume.data for seq, volume in images.items()}
    tissue = parenchyma(arrays, brain)
    return BrainMasks(brain, tissue, statistics_mask(tissue, brain, first.spacing, arrays))


def prepare(
    case: Case,
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    bias_correct: bool = True,
    register: bool = True,
    brain: str = "auto",
) -> Prepared:
    """Pre-process a case for the models: every sequence on one RAS grid, brain mask, normalised intensities.

    Args:
        case: the images (native grids) and the reference sequence.
        spacing: voxel size (mm) of the model grid.
        bias_correct: run N4 on every image first.
        register: rigidly register every sequence to the reference (otherwise trust the scanner's alignment).
        brain: brain extraction method ("auto", or a name from `brain.available_methods()`).

    Returns:
        The Prepared images, mask, grid, transforms, timings and warnings.

    Raises:
        InputError: unusable image (geometry, NaN/Inf, constant), unknown brain method, no brain found.
    """
    timings: dict[str, float] = {}
    warnings: list[str] = []
    with _timed(timings, "check"):
        for volume in case.images.values():
            check_volume(volume)
    with _timed(timings, "reorient"):
        ras = {seq: reorient(volume) for seq, volume in case.images.items()}
    if bias_correct:
        with _timed(timings, "bias"):
            ras = {seq: n4_correct(volume) for seq, volume in ras.items()}
    ref = case.reference
    grid = grid_for_spacing(Grid.of(ras[ref]), spacing)
    with _timed(timings, "resample"):
        on_grid = {ref: resample(ras[ref], grid, extend_edges=True)}
    registration = {ref: RigidTransform(np.eye(4))}
    for seq in case.sequences:
        if seq == ref:
            continue
        if register:
            with _timed(timings, "register"):
                registration[seq] = register_rigid(ras[seq], on_grid[ref])
            warnings += _registration_warnings(seq, ref, registration[seq])
        else:
            registration[seq] = RigidTransform(np.eye(4))
        with _timed(timings, "resample"):
            on_grid[seq] = resample(ras[seq], grid, transform=registration[seq].matrix)
    with _timed(timings, "coverage"):
        head = head_mask(on_grid[ref])
        for seq, volume in on_grid.items():
            covered = float((volume.data[head] != 0).mean()) if head.any() else 1.0
            if covered < MIN_COVERAGE:
                warnings.append(
                    f"{seq} covers {covered:.0%} of the {ref} head; outside its field of view it is 0"
                )
    with _timed(timings, "brain"):
        masks = brain_masks(on_grid, brain)
    with _timed(timings, "normalize"):
        images = {seq: normalize(volume, masks.statistics).data for seq, volume in on_grid.items()}
    for message in warnings:
        log.warning(message)
    log.info("prepared %s on %s grid %s: %s", case.sequences, ref, grid.shape, timings)
    return Prepared(
        images=images,
        brain_mask=masks.brain,
        grid=grid,
        registration=registration,
        timings=timings,
        warnings=warnings,
        reference=ref,
        resampled={seq: volume.data for seq, volume in on_grid.items()},
        statistics_mask=masks.statistics,
        tissue_mask=masks.tissue,
        native={seq: Grid.of(volume) for seq, volume in case.images.items()},
        native_codes={seq: axcodes(volume) for seq, volume in case.images.items()},
    )
