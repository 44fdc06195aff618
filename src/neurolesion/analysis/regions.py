"""Anatomy of one case: the MNI atlas brought onto the case's own grid, and the location of a lesion.

`atlas_to_case` registers the MNI ICBM152 2009 T1 template to the case's reference image with SimpleITK:
an affine registration (Mattes mutual information, so any contrast works), then a coarse B-spline
deformation that is kept only where it helps (it must raise the overlap of the warped template brain with
the case's brain mask, or lower the metric when there is no mask). The derived label maps of
`neurolesion.anatomy.template` (tissue, region, lobe, side) are then resampled once, nearest neighbour,
onto the reference's native grid.

Example:
    >>> anat = atlas_to_case(flair, brain_mask)  # doctest: +SKIP
    >>> anat.quality["brain_dice"], anat.warnings  # doctest: +SKIP
    (0.93, ())
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from neurolesion.anatomy.labels import BRAIN_TISSUES, Lobe, Region, Side
from neurolesion.errors import InputError
from neurolesion.preprocess.registration import to_sitk
from neurolesion.volume import Volume

log = logging.getLogger(__name__)

#: Below this Dice between the warped template brain and the case's brain mask, a warning is raised.
POOR_REGISTRATION_DICE = 0.85
#: A deformation is kept when it raises the brain Dice by at least this much.
DEFORMABLE_GAIN = 0.002
#: B-spline control-point spacing (mm).
BSPLINE_SPACING_MM = 40.0
#: Pyramid of both registration stages (shrink factors; smoothing sigma = factor / 2 mm).
SHRINK: tuple[int, ...] = (4, 2)
#: L-BFGS-B iterations of the B-spline stage per level (function evaluations: twice that).
BSPLINE_ITERATIONS = 20
#: Metric samples per pyramid level of the affine and B-spline stages.
AFFINE_SAMPLES = 20000
BSPLINE_SAMPLES = 4000

REGION_NAMES: dict[int, str] = {
    Region.LOBAR: "lobar",
    Region.DEEP: "deep",
    Region.INFRATENTORIAL: "infratentorial",
}
SIDE_NAMES: dict[int, str] = {Side.LEFT: "left", Side.RIGHT: "right"}


def lobe_name(code: int) -> str:
    """Lower-case name of a `Lobe` code ('' for none).

    Example:
        >>> lobe_name(Lobe.BASAL_GANGLIA), lobe_name(0)
        ('basal_ganglia', '')
    """
    return "" if code == Lobe.NONE else Lobe(code).name.lower()


@dataclass(frozen=True)
class Location:
    """Where a lesion is: region, lobe or deep structure, side, and brainstem involvement."""

    region: str
    lobe: str
    side: str
    brainstem: bool


@dataclass(frozen=True, eq=False)
class MniAtlas:
    """The template and its label maps in MNI space (the moving side of the registration).

    Attributes:
        template: T1 template image (skull-stripped: 0 outside the brain), MNI mm affine.
        tissue, region, lobe, side: uint8 `Tissue`, `Region`, `Lobe` and `Side` maps on one grid.
        affine: voxel-to-MNI mm matrix of the label maps.
    """

    template: Volume
    tissue: np.ndarray
    region: np.ndarray
    lobe: np.ndarray
    side: np.ndarray
    affine: np.ndarray


@dataclass(frozen=True, eq=False)
class CaseAnatomy:
    """Atlas label maps on a case's native grid.

    Attributes:
        tissue, region, lobe, side: uint8 code maps (same shape as the reference).
        affine: the reference's voxel-to-RAS matrix.
        quality: registration figures (``brain_dice``, ``mattes_mi``, ``deformable``, ``seconds``).
        figure: RGB uint8 check image (reference with the warped lobes), or None.
        warnings: human-readable problems (poor registration, no brain mask).
    """

    tissue: np.ndarray
    region: np.ndarray
    lobe: np.ndarray
    side: np.ndarray
    affine: np.ndarray
    quality: Mapping[str, Any] = field(default_factory=dict)
    figure: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        x, y, z = self.lobe.shape
        return (int(x), int(y), int(z))

    def locate(self, mask: np.ndarray, box: tuple[slice, ...]) -> Location:
        """Location of the lesion `mask` (a boolean crop at `box` of this grid).

        Lobe is the most frequent non-zero lobe code under the lesion (when none, within 3 voxels of it)
        and region the most frequent region code where that lobe is; side is the majority side, or ``midline`` when the minority side holds at least
        a third of the lesion. ``brainstem`` is True when any lesion voxel lies in the brainstem.

        Example:
            >>> a = CaseAnatomy(*(np.full((4, 4, 4), c, np.uint8) for c in (9, 3, 13, 1)), np.eye(4))
            >>> a.locate(np.ones((1, 1, 1), bool), (slice(0, 1),) * 3)
            Location(region='infratentorial', lobe='brainstem', side='left', brainstem=True)
        """
        lobes, regions, sides = (m[box][mask] for m in (self.lobe, self.region, self.side))
        if not lobes.any():
            near = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in box)
            lobes, regions, sides = (m[near].ravel() for m in (self.lobe, self.region, self.side))
        lobe = _majority(lobes)
        region = _majority(regions[lobes == lobe]) if lobe else _majority(regions)
        left, right = int(np.count_nonzero(sides == Side.LEFT)), int(np.count_nonzero(sides == Side.RIGHT))
        if left + right == 0:
            side = ""
        elif min(left, right) >= (left + right) / 3:
            side = "midline"
        else:
            side = "left" if left > right else "right"
        return Location(
            region=REGION_NAMES.get(region, ""),
            lobe=lobe_name(lobe),
            side=side,
            brainstem=bool(np.any(self.lobe[box][mask] == Lobe.BRAINSTEM)),
        )


def _majority(codes: np.ndarray) -> int:
    """Most frequent non-zero code (0 when none)."""
    counts = np.bincount(codes.ravel().astype(np.int64), minlength=1)
    counts[0] = 0
    return int(counts.argmax()) if counts.any() else 0


@functools.lru_cache(maxsize=1)
def mni_atlas() -> MniAtlas:
    """The shipped MNI atlas: nilearn's ICBM152 2009 T1 and the derived anatomy (cached on disk)."""
    from neurolesion.anatomy.atlases import template_grid
    from neurolesion.anatomy.template import load_anatomy

    grid = template_grid()
    anat = load_anatomy()
    template = Volume(grid.t1, grid.affine, name="MNI152 2009 T1")
    return MniAtlas(template, anat.labels, anat.regions, anat.lobes, anat.sides, anat.affine)


def atlas_to_case(
    reference: Volume,
    brain_mask: np.ndarray | None = None,
    *,
    atlas: MniAtlas | None = None,
    deformable: bool = True,
    seed: int = 0,
) -> CaseAnatomy:
    """Register the MNI template to `reference` and bring the atlas label maps onto its grid.

    Args:
        reference: the case's reference image (any contrast, grid and orientation; first channel used).
        brain_mask: (X, Y, Z) brain mask on the reference grid; strongly recommended (the template is
            skull-stripped), and used to judge the registration.
        atlas: template and label maps in MNI space (default: `mni_atlas()`); tests pass phantoms.
        deformable: try a B-spline refinement after the affine stage (kept only where it helps).
        seed: metric sampling seed (deterministic result).

    Returns:
        The case anatomy, with registration quality figures, a check image and warnings.

    Raises:
        InputError: the brain mask does not match the reference grid or is empty.

    Example:
        >>> anat = atlas_to_case(t1, brain_mask)  # doctest: +SKIP
        >>> anat.locate(lesion_mask, box).lobe  # doctest: +SKIP
        'frontal'
    """
    import time

    start = time.perf_counter()
    atlas = atlas or mni_atlas()
    ref = reference if reference.channels == 1 else reference.with_array(reference.array[:1])
    warnings: list[str] = []
    if brain_mask is not None:
        mask = np.asarray(brain_mask) > 0
        if mask.shape != ref.shape:
            raise InputError(
                f"{reference.name or 'reference'}: brain mask shape {mask.shape} differs from the image {ref.shape}"
            )
        if not mask.any():
            raise InputError(f"{reference.name or 'reference'}: brain mask is empty; expected the brain")
    else:
        mask = None
        warnings.append(
            "no brain mask: the atlas was registered to the whole head, regions are less reliable"
        )

    fixed = sitk.Cast(to_sitk(ref if mask is None else ref.with_array(ref.data * mask)), sitk.sitkFloat32)
    moving = sitk.Cast(to_sitk(atlas.template), sitk.sitkFloat32)
    fixed_mask = _mask_image(mask if mask is not None else ref.data > 0, fixed)
    moving_mask = _mask_image(atlas.template.data > 0, moving)
    codes = _code_image(atlas)

    try:
        transform, metric = _affine_stage(fixed, moving, fixed_mask, moving_mask, seed)
    except RuntimeError as err:  # ITK gives up on degenerate problems (e.g. a mask far from the brain)
        log.warning("atlas registration failed: %s", err)
        warnings.append("atlas registration failed: the atlas was placed by the brain masks' centres only")
        transform, metric, deformable = _initial_transform(fixed_mask, moving_mask), float("nan"), False
    brain = _brain_code_image(atlas)
    dice = _dice(brain, transform, fixed_mask) if mask is not None else float("nan")
    used_deformable = False
    if deformable:
        refined, refined_metric = _bspline_stage(fixed, moving, fixed_mask, transform, seed)
        refined_dice = _dice(brain, refined, fixed_mask) if mask is not None else float("nan")
        helps = refined_dice >= dice + DEFORMABLE_GAIN if mask is not None else refined_metric < metric
        if helps:
            transform, metric, dice, used_deformable = refined, refined_metric, refined_dice, True
    if mask is not None and dice < POOR_REGISTRATION_DICE:
        warnings.append(
            f"atlas registration looks poor (brain overlap Dice {dice:.2f} < {POOR_REGISTRATION_DICE}): "
            "regions, lobes and MARS locations may be wrong"
        )

    warped = sitk.GetArrayFromImage(
        sitk.Resample(
            codes, fixed, _fast_transform(transform, fixed), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt32
        )
    ).transpose(2, 1, 0)
    tissue, region, lobe, side = (((warped >> shift) & 0xFF).astype(np.uint8) for shift in (0, 8, 16, 24))
    quality = {
        "brain_dice": round(dice, 4),
        "mattes_mi": round(metric, 4),
        "deformable": used_deformable,
        "seconds": round(time.perf_counter() - start, 2),
    }
    log.info("atlas registered to %s: %s", reference.name or "reference", quality)
    from neurolesion.report.figures import registration_figure

    figure = registration_figure(ref, lobe)
    return CaseAnatomy(tissue, region, lobe, side, ref.affine, quality, figure, tuple(warnings))


def _mask_image(mask: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(mask.transpose(2, 1, 0)).astype(np.uint8))
    image.CopyInformation(like)
    return image


def _code_image(atlas: MniAtlas) -> sitk.Image:
    """The four label maps packed into one uint32 image (one nearest-neighbour resampling for all)."""
    packed = (
        atlas.tissue.astype(np.uint32)
        | (atlas.region.astype(np.uint32) << 8)
        | (atlas.lobe.astype(np.uint32) << 16)
        | (atlas.side.astype(np.uint32) << 24)
    )
    return to_sitk_labels(packed, atlas.affine)


def _brain_code_image(atlas: MniAtlas) -> sitk.Image:
    return to_sitk_labels(np.isin(atlas.tissue, list(BRAIN_TISSUES)).astype(np.uint32), atlas.affine)


def to_sitk_labels(labels: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """An integer label map as a SimpleITK image (LPS geometry of `affine`), keeping its dtype.

    Example:
        >>> to_sitk_labels(np.zeros((2, 3, 4), np.uint32), np.eye(4)).GetPixelIDTypeAsString()
        '32-bit unsigned integer'
    """
    geometry = to_sitk(Volume(np.zeros((1, 1, 1)), affine))
    image = sitk.GetImageFromArray(np.ascontiguousarray(labels.transpose(2, 1, 0)))
    image.SetSpacing(geometry.GetSpacing())
    image.SetOrigin(geometry.GetOrigin())
    image.SetDirection(geometry.GetDirection())
    return image


def _method(
    fixed_mask: sitk.Image, seed: int, shrink: Sequence[int], samples: int
) -> sitk.ImageRegistrationMethod:
    """Mattes MI inside the fixed mask, about `samples` random samples at every pyramid level."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    inside = max(int(sitk.GetArrayViewFromImage(fixed_mask).sum()), 1)
    # SimpleITK reads seed 0 as "seed from the wall clock" (sitkWallClock): shift it so 0 is a seed too
    method.SetMetricSamplingPercentagePerLevel([min(1.0, samples * f**3 / inside) for f in shrink], seed + 1)
    method.SetMetricFixedMask(fixed_mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel([f / 2 for f in shrink])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _affine_stage(
    fixed: sitk.Image, moving: sitk.Image, fixed_mask: sitk.Image, moving_mask: sitk.Image, seed: int
) -> tuple[sitk.Transform, float]:
    """Affine registration started from the brain masks' centres and volume ratio; (transform, final MI)."""
    initial = _initial_transform(fixed_mask, moving_mask)
    method = _method(fixed_mask, seed, SHRINK, AFFINE_SAMPLES)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=100, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(initial, inPlace=False)
    result: sitk.Transform = method.Execute(fixed, moving)
    return result, float(method.GetMetricValue())


def _initial_transform(fixed_mask: sitk.Image, moving_mask: sitk.Image) -> sitk.AffineTransform:
    """Scaling about the fixed mask's centre by the cube root of the volume ratio, then centre onto centre."""
    fixed_stats, moving_stats = sitk.LabelShapeStatisticsImageFilter(), sitk.LabelShapeStatisticsImageFilter()
    fixed_stats.Execute(fixed_mask)
    moving_stats.Execute(moving_mask)
    scale = (moving_stats.GetPhysicalSize(1) / fixed_stats.GetPhysicalSize(1)) ** (1 / 3)
    centre = fixed_stats.GetCentroid(1)
    initial = sitk.AffineTransform(3)
    initial.SetCenter(centre)
    initial.SetMatrix((np.eye(3) * scale).ravel().tolist())
    initial.SetTranslation((np.asarray(moving_stats.GetCentroid(1)) - np.asarray(centre)).tolist())
    return initial


def _bspline_stage(
    fixed: sitk.Image, moving: sitk.Image, fixed_mask: sitk.Image, affine: sitk.Transform, seed: int
) -> tuple[sitk.Transform, float]:
    """A coarse B-spline deformation on top of `affine` (B-spline first, then affine); (transform, final MI)."""
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    mesh = [max(round(float(e) / BSPLINE_SPACING_MM), 1) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    method = _method(fixed_mask, seed, SHRINK, BSPLINE_SAMPLES)
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5,
        numberOfIterations=BSPLINE_ITERATIONS,
        maximumNumberOfCorrections=5,
        maximumNumberOfFunctionEvaluations=2 * BSPLINE_ITERATIONS,
    )
    method.SetMovingInitialTransform(affine)
    method.SetInitialTransform(bspline, inPlace=True)
    method.Execute(fixed, moving)
    composite = sitk.CompositeTransform(affine)
    composite.AddTransform(bspline)
    return composite, float(method.GetMetricValue())


def _fast_transform(transform: sitk.Transform, fixed: sitk.Image) -> sitk.Transform:
    """A deformable transform sampled as a displacement field on a 4x coarser grid (fast to apply)."""
    if transform.Downcast().GetName() != "CompositeTransform":
        return transform
    coarse = sitk.Shrink(fixed, [4 if n >= 32 else 1 for n in fixed.GetSize()])
    field = sitk.TransformToDisplacementField(
        transform,
        sitk.sitkVectorFloat64,
        coarse.GetSize(),
        coarse.GetOrigin(),
        coarse.GetSpacing(),
        coarse.GetDirection(),
    )
    return sitk.DisplacementFieldTransform(field)


def _dice(brain: sitk.Image, transform: sitk.Transform, fixed_mask: sitk.Image) -> float:
    """Dice of the warped template brain and the case's brain mask (axes finer than 1.5 mm halved)."""
    factors = [
        2 if n >= 16 and d < 1.5 else 1
        for n, d in zip(fixed_mask.GetSize(), fixed_mask.GetSpacing(), strict=True)
    ]
    coarse = sitk.Shrink(fixed_mask, factors)
    warped = sitk.GetArrayViewFromImage(
        sitk.Resample(brain, coarse, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt32)
    ).astype(bool)
    case = sitk.GetArrayViewFromImage(coarse).astype(bool)
    total = int(warped.sum()) + int(case.sum())
    return 2.0 * int((warped & case).sum()) / total if total else float("nan")
