"""Acquisition realism: resolution and slice thickness, orientation, field of view, bias, noise, ghosts.

An image rendered on the working grid (1 mm) is "acquired" on a clinical grid:

* `random_acquisition` draws the protocol: in-plane resolution and slice thickness from clinical presets
  (e.g. 0.5x0.5x3 mm T2W, 0.43x0.43x6.5 mm T2*, 1 mm 3D T1, 1x1x5 mm 2D FLAIR), the slice orientation
  (axial / sagittal / coronal, slightly oblique), SNR, bias-field strength and optional motion ghosts.
* `degrade` applies what happens inside the scanner on the working grid: bias field, partial-volume and
  slice-profile blurring along the acquisition axes (complex images keep their phase, so susceptibility
  blooms when voxels average), motion ghosts.
* `gibbs_ringing` truncates k-space along the in-plane axes of an image on the acquisition grid (the
  truncation artefact: ripples beside sharp edges such as CSF/brain and skull).
* `native_grid` builds the acquisition grid (affine + shape) around the head; `resample` brings an image
  onto any grid (linear) and `nearest_index` / `gather` bring label maps (nearest neighbour, exact codes).
* `noise_sigma` and `add_complex_noise` add complex Gaussian noise (its magnitude is Rician).

Example:
    >>> rng = np.random.default_rng(0)
    >>> acq = random_acquisition("t2", rng, AcquisitionConfig())
    >>> len(acq.spacing), acq.plane in ("axial", "sagittal", "coronal")
    (3, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage
from scipy.spatial.transform import Rotation

from neurolesion.synth.deform import check_ranges

#: Clinical (in-plane, slice thickness) presets per sequence, mm, with a 3D flag (isotropic-ish volume).
PRESETS: dict[str, tuple[tuple[float, float, bool], ...]] = {
    "t1": ((1.0, 1.0, True), (0.9, 0.9, True), (0.9, 5.0, False), (0.5, 1.0, True)),
    "t1c": ((1.0, 1.0, True), (0.9, 0.9, True), (0.9, 5.0, False), (0.5, 3.0, False)),
    "t2": ((0.5, 3.0, False), (0.45, 5.0, False), (0.7, 4.0, False), (1.0, 1.0, True)),
    "flair": ((1.0, 5.0, False), (1.0, 1.0, True), (0.7, 3.0, False), (0.9, 6.0, False)),
    "t2star": ((0.43, 6.5, False), (0.9, 5.0, False), (1.0, 3.0, False)),
    "swi": ((0.5, 2.0, True), (0.7, 1.5, True), (1.0, 2.0, True)),
}

PLANES: tuple[str, ...] = ("axial", "sagittal", "coronal")
#: The working-grid axis that the slice direction follows, per plane (RAS grid: x sagittal, y coronal, z axial).
SLICE_AXIS: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass(frozen=True)
class AcquisitionConfig:
    """Ranges of the acquisition realism.

    Attributes:
        snr: (low, high) signal-to-noise ratio in the brain.
        bias: (low, high) peak-to-peak amplitude of the multiplicative bias field (0.3 = +-15 %).
        oblique_deg: largest obliquity of the slice stack.
        ghost_p: probability of motion ghosting.
        axial_p: probability of an axial 2D acquisition (else sagittal or coronal equally).
        fov_margin_mm: (low, high) margin around the head in the field of view (negative cuts into it).
        resolution_scale: multiplies every drawn voxel size (2 for quick low-resolution simulations).
        gibbs_p: probability of Gibbs ringing (k-space truncation) per sequence.
        gibbs_kept: (low, high) fraction of the in-plane k-space kept when it rings (1 = none cut).

    Raises:
        InputError: a value out of range (names the field, the value and the expected range).
    """

    snr: tuple[float, float] = (12.0, 45.0)
    bias: tuple[float, float] = (0.05, 0.5)
    oblique_deg: float = 10.0
    ghost_p: float = 0.15
    axial_p: float = 0.6
    fov_margin_mm: tuple[float, float] = (-6.0, 20.0)
    resolution_scale: float = 1.0
    gibbs_p: float = 0.3
    gibbs_kept: tuple[float, float] = (0.6, 0.9)

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool, str], ...] = (
            ("snr", 0 < self.snr[0] <= self.snr[1], "0 < low <= high"),
            ("bias", 0 <= self.bias[0] <= self.bias[1] <= 2, "0 <= low <= high <= 2"),
            ("oblique_deg", 0 <= self.oblique_deg <= 45, "0-45 degrees"),
            ("ghost_p", 0 <= self.ghost_p <= 1, "a probability in [0, 1]"),
            ("axial_p", 0 <= self.axial_p <= 1, "a probability in [0, 1]"),
            ("fov_margin_mm", self.fov_margin_mm[0] <= self.fov_margin_mm[1], "low <= high"),
            ("resolution_scale", 0.25 <= self.resolution_scale <= 8, "0.25-8"),
            ("gibbs_p", 0 <= self.gibbs_p <= 1, "a probability in [0, 1]"),
            ("gibbs_kept", 0.1 <= self.gibbs_kept[0] <= self.gibbs_kept[1] <= 1, "0.1 <= low <= high <= 1"),
        )
        check_ranges("acquisition config", self, checks)


@dataclass(frozen=True)
class Acquisition:
    """The drawn acquisition protocol of one sequence.

    Attributes:
        sequence: registry name.
        spacing: voxel size along the acquisition axes (in-plane, in-plane, slice), mm.
        plane: axial, sagittal or coronal.
        oblique: (3,) small rotation angles (deg) of the slice stack.
        snr: brain signal over noise standard deviation.
        bias: bias-field amplitude.
        ghosts: relative amplitude of motion ghosts (0: none).
        gibbs_kept: fraction of the in-plane k-space kept (1: no truncation, no Gibbs ringing); a case.json
            without it was simulated before Gibbs ringing existed (none).
    """

    sequence: str
    spacing: tuple[float, float, float]
    plane: str
    oblique: tuple[float, float, float]
    snr: float
    bias: float
    ghosts: float
    gibbs_kept: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def spacing_on_working_axes(self) -> tuple[float, float, float]:
        """Voxel size along the working grid axes (x, y, z), ignoring the small obliquity."""
        out = [self.spacing[0]] * 3
        out[SLICE_AXIS[self.plane]] = self.spacing[2]
        return (out[0], out[1], out[2])

    def inplane_axes(self) -> tuple[int, int]:
        """The two working-grid axes of the slice plane (phase and readout encoding).

        Example:
            >>> Acquisition("t2", (0.5, 0.5, 3.0), "coronal", (0.0, 0.0, 0.0), 20.0, 0.1, 0.0).inplane_axes()
            (0, 2)
        """
        a, b = (axis for axis in range(3) if axis != SLICE_AXIS[self.plane])
        return (a, b)


def random_acquisition(sequence: str, rng: np.random.Generator, config: AcquisitionConfig) -> Acquisition:
    """Draw a clinical protocol for `sequence`.

    Gibbs ringing is drawn from a child generator (`rng.spawn`), which leaves `rng`'s own stream untouched:
    with ``gibbs_p = 0`` every other draw of a seed is what it was before the effect existed.

    Raises:
        ValueError: an unknown sequence.
    """
    if sequence not in PRESETS:
        raise ValueError(f"unknown sequence {sequence!r}; expected one of {sorted(PRESETS)}")
    presets = PRESETS[sequence]
    inplane, thick, is3d = presets[int(rng.integers(len(presets)))]
    jitter = rng.uniform(0.9, 1.1, 2) * config.resolution_scale
    if is3d:
        plane = str(rng.choice(PLANES))
    else:
        side = (1 - config.axial_p) / 2
        plane = str(rng.choice(PLANES, p=[config.axial_p, side, side]))
    ghosts = float(rng.uniform(0.03, 0.12)) if rng.uniform() < config.ghost_p else 0.0
    child = rng.spawn(1)[0]
    gibbs = float(child.uniform(*config.gibbs_kept)) if child.uniform() < config.gibbs_p else 1.0
    return Acquisition(
        sequence=sequence,
        spacing=(float(inplane * jitter[0]), float(inplane * jitter[0]), float(thick * jitter[1])),
        plane=plane,
        oblique=tuple(float(a) for a in rng.uniform(-config.oblique_deg, config.oblique_deg, 3)),  # type: ignore[arg-type]
        snr=float(rng.uniform(*config.snr)),
        bias=float(rng.uniform(*config.bias)),
        ghosts=ghosts,
        gibbs_kept=gibbs,
    )


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Smooth multiplicative field exp(a * (f - mean)) with f a smooth random field, peak-to-peak about a."""
    from neurolesion.synth.deform import upsample

    f = upsample(rng.normal(0.0, 1.0, (4, 4, 4)).astype(np.float32), shape)
    f = (f - f.mean()) / (np.ptp(f) + 1e-6)
    return np.exp(amplitude * f).astype(np.float32)


def degrade(
    image: np.ndarray, acq: Acquisition, work_spacing: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Bias, partial-volume / slice-profile blur along the acquisition axes, and motion ghosts.

    The blur is Gaussian with a FWHM of one acquisition voxel; in-plane, when the protocol rings
    (``acq.gibbs_kept < 1``), only half of it (anti-aliasing): `gibbs_ringing` on the acquisition grid then
    gives the in-plane profile, a truncated sinc whose width is one voxel / ``gibbs_kept``.

    Args:
        image: (X, Y, Z) real or complex image on the working grid.
        acq: the protocol.
        work_spacing: voxel size of the working grid, mm.
        rng: random generator.

    Returns:
        Array of the same shape and kind (complex stays complex, so dephasing averages into blooming).
    """
    out = image * bias_field(image.shape, rng, acq.bias)
    target = list(acq.spacing_on_working_axes())
    if acq.gibbs_kept < 1.0:  # in-plane, the truncated k-space (`gibbs_ringing`) sets the resolution: a
        for axis in acq.inplane_axes():  # sinc profile instead of the Gaussian, which only anti-aliases
            target[axis] *= 0.5
    # Gaussian with FWHM = voxel size, minus what the working grid already averages
    sigma = [
        np.sqrt(max(t**2 - w**2, 0.0) + 0.25 * w**2) / 2.355 / w
        for t, w in zip(target, work_spacing, strict=True)
    ]
    if np.iscomplexobj(out):
        out = ndimage.gaussian_filter(out.real, sigma) + 1j * ndimage.gaussian_filter(out.imag, sigma)
        out = out.astype(np.complex64)
    else:
        out = ndimage.gaussian_filter(out.astype(np.float32), sigma)
    if acq.ghosts > 0:
        pe_axis = (SLICE_AXIS[acq.plane] + 1 + int(rng.integers(2))) % 3
        n = out.shape[pe_axis]
        ghost = np.zeros_like(out)
        for k in (2, 4):  # periodic motion: copies shifted by FOV/2 and FOV/4 along phase encoding
            ghost += (2.0 * acq.ghosts / k) * np.roll(out, n // k, axis=pe_axis)
        out = out + ghost
    return out


def shape_for_spacing(
    shape: tuple[int, ...], spacing: Sequence[float], new_spacing: Sequence[float]
) -> tuple[int, int, int]:
    """The shape of the same box sampled at `new_spacing` (at least one voxel per axis).

    Example:
        >>> shape_for_spacing((180, 216, 180), (1.0, 1.0, 1.0), (1.0, 1.0, 5.0))
        (180, 216, 36)
    """
    out = [max(round(n * s / d), 1) for n, s, d in zip(shape, spacing, new_spacing, strict=True)]
    return (out[0], out[1], out[2])


def sample_along_working_axes(
    image: np.ndarray, acq: Acquisition, work_spacing: tuple[float, float, float]
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Common-grid acquisition: a `degrade`d working-grid image sampled at the protocol's resolution along
    the working axes (no coarser than the working grid), with its Gibbs ringing.

    Args:
        image: (X, Y, Z) real or complex image on the working grid, after `degrade`.
        acq: the protocol.
        work_spacing: voxel size of the working grid, mm.

    Returns:
        ``(image on the acquisition-resolution grid over the same box, that grid's voxel size)``; noise and
        interpolation back onto the output grid come after.

    Example:
        >>> acq = Acquisition("flair", (1.0, 1.0, 5.0), "axial", (0.0, 0.0, 0.0), 20.0, 0.0, 0.0)
        >>> img, sp = sample_along_working_axes(np.ones((20, 20, 20), np.float32), acq, (1.0, 1.0, 1.0))
        >>> img.shape, sp
        ((20, 20, 4), (1.0, 1.0, 5.0))
    """
    wa = acq.spacing_on_working_axes()
    spacing = (max(wa[0], work_spacing[0]), max(wa[1], work_spacing[1]), max(wa[2], work_spacing[2]))
    out = resize(image, shape_for_spacing(image.shape, work_spacing, spacing), order=1)
    return gibbs_ringing(out, acq.gibbs_kept, acq.inplane_axes()), spacing


def gibbs_ringing(image: np.ndarray, kept: float, axes: tuple[int, ...]) -> np.ndarray:
    """Truncation artefact: keep the central `kept` fraction of k-space along each of `axes` (hard cut).

    A clinical scanner samples k-space only up to the resolution of its matrix and reconstructs by inverse
    FFT, so every sharp edge rings (overshoot and ripples, period about two voxels / `kept`). Call it on an
    image sampled on the acquisition grid, with the in-plane (phase and readout) axes; one 1D FFT per axis.

    Args:
        image: real or complex array on the acquisition grid.
        kept: fraction of k-space kept along each axis, in (0, 1]; 1 returns `image` unchanged.
        axes: the axes to truncate.

    Returns:
        Array of the same shape and dtype.

    Example:
        >>> step = np.repeat([0.0, 1.0], 16).reshape(32, 1, 1).astype(np.float32)
        >>> bool(gibbs_ringing(step, 0.7, (0,)).max() > 1.05)
        True
    """
    if kept >= 1.0:
        return image
    out = image
    for axis in axes:
        n = out.shape[axis]
        shape = [1] * out.ndim
        shape[axis] = -1
        if np.iscomplexobj(out):
            keep = np.abs(np.fft.fftfreq(n)) <= 0.5 * kept
            out = sfft.ifft(sfft.fft(out, axis=axis) * keep.reshape(shape), axis=axis)
        else:
            keep = np.fft.rfftfreq(n) <= 0.5 * kept
            out = sfft.irfft(sfft.rfft(out, axis=axis) * keep.reshape(shape), n=n, axis=axis)
    return out.astype(image.dtype, copy=False)


def noise_sigma(image: np.ndarray, brain: np.ndarray | None, snr: float) -> float:
    """Noise standard deviation for `snr`: mean magnitude inside `brain` (or the non-zero voxels) / snr.

    Example:
        >>> noise_sigma(np.full((2, 2, 2), 10.0), None, 20.0)
        0.5
    """
    mag = np.abs(image)
    ref = mag[brain] if brain is not None and brain.any() else mag[mag > 0]
    return float(ref.mean() / snr) if ref.size else 0.0


def add_complex_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """The image plus complex Gaussian noise of standard deviation `sigma` (complex64; |.| is Rician).

    Example:
        >>> z = add_complex_noise(np.ones((4, 4, 4)), 0.1, np.random.default_rng(0))
        >>> z.dtype
        dtype('complex64')
    """
    out = np.empty(image.shape, np.complex64)
    out.real = image.real
    out.imag = image.imag if np.iscomplexobj(image) else 0.0
    out.real += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    out.imag += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return out


def native_grid(
    acq: Acquisition,
    head_mm: np.ndarray,
    rng: np.random.Generator,
    config: AcquisitionConfig,
) -> tuple[tuple[int, int, int], np.ndarray]:
    """The acquisition grid: oriented by plane and obliquity, sized to the head plus a random margin.

    Args:
        acq: the protocol.
        head_mm: (3, N) RAS mm of (a sample of) head voxels.
        rng: random generator (margins and offset).
        config: ranges.

    Returns:
        (shape, affine): the grid's shape and voxel-to-RAS 4x4 matrix. Axis 2 is the slice direction.
    """
    base = {
        "axial": np.array(
            [[-1, 0, 0], [0, 1, 0], [0, 0, 1]], float
        ),  # LAS-like: x in-plane, y in-plane, z slices
        "coronal": np.array([[-1, 0, 0], [0, 0, 1], [0, -1, 0]], float).T,
        "sagittal": np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], float).T,
    }[acq.plane]
    rot = Rotation.from_euler("xyz", acq.oblique, degrees=True).as_matrix() @ base
    local = rot.T @ head_mm  # head in the grid's axes
    lo, hi = local.min(axis=1), local.max(axis=1)
    margin = rng.uniform(*config.fov_margin_mm, size=(2, 3))
    lo, hi = lo - margin[0], hi + margin[1]
    spacing = np.asarray(acq.spacing)
    shape = np.maximum(np.ceil((hi - lo) / spacing).astype(int), 8)
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = rot @ lo
    return (int(shape[0]), int(shape[1]), int(shape[2])), affine


def grid_coordinates(
    shape: tuple[int, int, int], affine: np.ndarray, source_affine: np.ndarray
) -> np.ndarray:
    """(3, N) float32 voxel coordinates, in the source grid, of every voxel of the target grid."""
    m = (np.linalg.inv(source_affine) @ affine).astype(np.float32)
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    out = np.empty((3, *shape), np.float32)
    for c in range(3):
        out[c] = (
            (m[c, 0] * axes[0])[:, None, None]
            + (m[c, 1] * axes[1])[None, :, None]
            + (m[c, 2] * axes[2] + m[c, 3])[None, None, :]
        )
    return out.reshape(3, -1)


def box_affine(affine: np.ndarray, shape: tuple[int, ...], new_shape: tuple[int, ...]) -> np.ndarray:
    """Affine of a grid of `new_shape` voxels covering the same box as (`affine`, `shape`).

    Example:
        >>> box_affine(np.eye(4), (4, 4, 4), (2, 2, 2))[:3, 3]
        array([0.5, 0.5, 0.5])
    """
    ratio = np.array([n / m for n, m in zip(shape, new_shape, strict=True)], dtype=np.float64)
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * ratio
    out[:3, 3] = affine[:3, :3] @ ((ratio - 1) / 2) + affine[:3, 3]
    return out


def resize(a: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """Resize to `shape` over the same box, only along axes whose size changes.

    Linear (order 1, one small matrix product per axis, real or complex) or nearest neighbour (order 0,
    exact label codes).

    Example:
        >>> resize(np.arange(4.0).reshape(4, 1, 1), (2, 1, 1), order=0).ravel()
        array([1., 3.])
    """
    from neurolesion.synth.deform import interpolation_matrix

    out = a
    for axis, n in enumerate(shape):
        if out.shape[axis] == n:
            continue
        if order == 0:
            idx = np.minimum(
                ((np.arange(n) + 0.5) * out.shape[axis] / n).astype(np.int64), out.shape[axis] - 1
            )
            out = np.take(out, idx, axis=axis)
        else:
            w = interpolation_matrix(out.shape[axis], n, order=1)
            if np.iscomplexobj(out):
                w = w.astype(np.complex64)
            out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return np.ascontiguousarray(out)


def resample(image: np.ndarray, coords: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Linear resampling of a real or complex image at `coords` (from `grid_coordinates`)."""
    if np.iscomplexobj(image):
        re = ndimage.map_coordinates(image.real, coords, order=1, mode="constant", cval=0.0)
        im = ndimage.map_coordinates(image.imag, coords, order=1, mode="constant", cval=0.0)
        return (re + 1j * im).astype(np.complex64).reshape(shape)
    out = ndimage.map_coordinates(image.astype(np.float32), coords, order=1, mode="constant", cval=0.0)
    return out.reshape(shape)


def nearest_index(coords: np.ndarray, source_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flat nearest-neighbour source indices for `coords` and the mask of those inside the source grid."""
    r = np.rint(coords).astype(np.int32)
    inside = np.ones(r.shape[1], dtype=bool)
    flat = np.zeros(r.shape[1], dtype=np.int64)
    for axis, n in enumerate(source_shape):
        inside &= (r[axis] >= 0) & (r[axis] < n)
        flat *= n
        flat += r[axis]
    flat[~inside] = 0
    return flat, inside


def gather(
    labels: np.ndarray, index: tuple[np.ndarray, np.ndarray], shape: tuple[int, int, int]
) -> np.ndarray:
    """A label map on the target grid from `nearest_index` (exact codes; 0 outside the source)."""
    flat, inside = index
    out = labels.reshape(-1)[flat]
    out = np.where(inside, out, 0).astype(labels.dtype)
    return out.reshape(shape)
