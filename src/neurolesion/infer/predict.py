"""Whole-volume prediction: sliding windows with Gaussian blending (MONAI), optional mirror TTA.

The caller normalises the image (see the model card's ``normalisation``); missing sequences are passed as
zero channels with ``present`` False. Probabilities come back on the input grid.

Precision: ``"auto"`` runs the network under bfloat16 autocast where the processor computes bfloat16
natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it; the shipped models were trained under
the same autocast) and in float32 elsewhere, where emulated bfloat16 would be slower. Probabilities differ
from float32 by about 1e-4 on average; ``"float32"`` gives the reference numbers on any machine.

Example:
    >>> import numpy as np
    >>> from neurolesion.models.card import LoadedModel, ModelCard
    >>> from neurolesion.models.config import ModelConfig
    >>> from neurolesion.models.networks import build_network
    >>> cfg = ModelConfig(channels=(4, 8), patch_size=(16, 16, 16))
    >>> model = LoadedModel(build_network(cfg).eval(), cfg, ModelCard.for_config("toy", cfg))
    >>> predict_volume(model, np.zeros((1, 20, 24, 18), np.float32), (1.0, 1.0, 1.0)).shape
    (1, 20, 24, 18)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

from neurolesion.errors import InputError
from neurolesion.infer.fastconv import for_inference
from neurolesion.models.card import LoadedModel, load_model

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (so that autocasting to it is faster, not slower)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device: str | torch.device | None = None) -> str:
    """What ``precision`` means on ``device``: ``"bfloat16"`` (autocast) or ``"float32"``.

    Args:
        precision: ``"auto"`` (bfloat16 where native, see `native_bfloat16`), ``"float32"`` or ``"bfloat16"``.
        device: where the network runs (default: CUDA when available, else CPU).

    Returns:
        ``"bfloat16"`` or ``"float32"``.

    Raises:
        InputError: unknown precision.

    Example:
        >>> resolve_precision("float32", "cpu")
        'float32'
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if precision == "bfloat16" or (precision == "auto" and native_bfloat16(dev)):
        return "bfloat16"
    return "float32"


def spacing_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """Shape of a grid of `shape` voxels of size `spacing` once resampled to voxels of size `target`.

    Example:
        >>> spacing_shape((182, 218, 182), (1.0, 1.0, 1.0), (2.0, 2.0, 2.0))
        (91, 109, 91)
    """
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True))


def resize_to_spacing(array: np.ndarray, spacing: Sequence[float], target: Sequence[float]) -> np.ndarray:
    """A (C, X, Y, Z) array resampled trilinearly from voxel size `spacing` to `target` (mm), the way
    `predict_volume` brings an image to its model's spacing (same extent, voxel centres scaled).

    Example:
        >>> resize_to_spacing(np.zeros((1, 8, 8, 8), np.float32), (1, 1, 1), (2, 2, 2)).shape
        (1, 4, 4, 4)
    """
    return resize_to_shape(array, spacing_shape(array.shape[1:], spacing, target))


def resize_to_shape(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A (C, X, Y, Z) array resampled trilinearly to `shape` (same extent): the way `predict_volume` brings
    probabilities from its model's grid back to the input grid.

    Example:
        >>> resize_to_shape(np.zeros((1, 4, 4, 4), np.float32), (8, 8, 8)).shape
        (1, 8, 8, 8)
    """
    if tuple(shape) == tuple(array.shape[1:]):
        return np.asarray(array, np.float32)
    x = torch.from_numpy(np.ascontiguousarray(array, np.float32))[None]
    return F.interpolate(x, size=tuple(shape), mode="trilinear", align_corners=False)[0].numpy()


def mask_box(mask: np.ndarray, spacing: Sequence[float], margin_mm: float) -> tuple[slice, slice, slice]:
    """The bounding box of a mask widened by `margin_mm` on every side and clipped to the array; the whole
    array when the mask is empty. Sliding windows over the brain's box instead of the whole field of view
    do the same work for a fraction of the windows.

    Args:
        mask: (X, Y, Z) bool.
        spacing: voxel size, mm.
        margin_mm: widening on each side, mm.

    Returns:
        Three slices.

    Example:
        >>> m = np.zeros((40, 40, 40), bool); m[10:20, 15:25, 5:6] = True
        >>> mask_box(m, (1.0, 1.0, 2.0), 4.0)
        (slice(6, 24, None), slice(11, 29, None), slice(3, 8, None))
    """
    idx = np.argwhere(mask)
    if idx.size == 0:
        return (slice(0, mask.shape[0]), slice(0, mask.shape[1]), slice(0, mask.shape[2]))
    pad = [int(np.ceil(margin_mm / float(s))) for s in spacing]
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + 1 + np.asarray(pad), mask.shape)
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))


def stack_inputs(
    images: Mapping[str, np.ndarray],
    inputs: Sequence[str],
    what: str,
    required: Sequence[Sequence[str]] = (),
) -> tuple[np.ndarray, list[bool]]:
    """Stack a model's input channels in the order of its card, zeros where a sequence is missing.

    Args:
        images: normalised (X, Y, Z) arrays on one grid, by sequence name.
        inputs: the model's input sequences (``card.inputs``).
        what: what is being segmented (file or model name), for the error message.
        required: groups of sequences of which one each must be present (``card.required``: the network
            never saw them all missing in training).

    Returns:
        ((C, X, Y, Z) float32 image, the ``present`` flags `predict_volume` takes).

    Raises:
        InputError: none of ``inputs`` is among ``images``, or a `required` group has no sequence present.

    Example:
        >>> image, present = stack_inputs({"flair": np.ones((4, 4, 4))}, ["flair", "t1"], "case1")
        >>> image.shape, present
        ((2, 4, 4, 4), [True, False])
    """
    present = [seq in images for seq in inputs]
    unmet = [g for g in (required or (tuple(inputs),)) if not set(images).intersection(g)]
    if unmet:
        needs = " and ".join(" or ".join(g) for g in unmet)
        raise InputError(f"{what}: needs {needs}; got {', '.join(images) or 'nothing'}")
    shape = next(np.shape(images[seq]) for seq, p in zip(inputs, present, strict=True) if p)
    blank = np.zeros(shape, np.float32)
    image = np.stack([np.asarray(images[seq], np.float32) if seq in images else blank for seq in inputs])
    return image, present


def predict_volume(
    model: LoadedModel,
    image: np.ndarray,
    spacing: Sequence[float],
    present: Sequence[bool] | np.ndarray | None = None,
    tta: bool | None = None,
    batch_size: int = 2,
    overlap: float = 0.25,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Segment a whole volume.

    Args:
        model: a loaded model (`load_model`).
        image: (C, X, Y, Z) float32, normalised, channels in the order of ``model.card.inputs``.
        spacing: voxel size of ``image`` in mm; when it differs from the model's spacing the image is
            resampled to the model's grid and the probabilities back to the input grid.
        present: which channels hold real data (missing ones are zeroed); default all.
        tta: average over the 8 mirrorings (8x slower); None: as the model card says (``card.tta``).
        batch_size: windows per forward pass.
        overlap: window overlap fraction.
        device: torch device (default: CUDA when available, else CPU).
        precision: ``"auto"``, ``"float32"`` or ``"bfloat16"`` (see the module).

    Returns:
        (K, X, Y, Z) float32 probabilities, one channel per task of ``model.card.tasks``.

    Raises:
        InputError: wrong channel count or dimensionality, unknown precision.
    """
    cfg = model.config
    if image.ndim != 4 or image.shape[0] != cfg.in_channels:
        raise InputError(
            f"image shape {image.shape}: expected ({cfg.in_channels}, X, Y, Z) for inputs {', '.join(cfg.inputs)}"
        )
    mask = np.ones(cfg.in_channels, bool) if present is None else np.asarray(present, bool)
    if mask.shape != (cfg.in_channels,) or not mask.any():
        raise InputError(f"present {list(mask)}: expected {cfg.in_channels} flags with at least one True")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bf16 = resolve_precision(precision, dev) == "bfloat16"
    in_shape = image.shape[1:]
    on_model = resize_to_spacing(
        np.asarray(image, np.float32) * mask[:, None, None, None], spacing, cfg.spacing
    )
    resample = on_model.shape[1:] != in_shape
    x = torch.from_numpy(np.ascontiguousarray(on_model))[None]
    net = for_inference(model.net).to(dev).eval()

    def windows(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(batch)
        return torch.sigmoid(logits.float())

    if tta is None:
        tta = model.card.tta
    flips = [f for r in range(4) for f in itertools.combinations((2, 3, 4), r)] if tta else [()]
    prob = torch.zeros((1, cfg.out_channels, *x.shape[2:]))
    with torch.inference_mode():
        for axes in flips:
            xi = torch.flip(x, axes) if axes else x
            p = sliding_window_inference(
                xi.to(dev),
                roi_size=cfg.patch_size,
                sw_batch_size=batch_size,
                predictor=windows,
                overlap=overlap,
                mode="gaussian",
                sw_device=dev,
                device=torch.device("cpu"),
            )
            assert isinstance(p, torch.Tensor)
            prob += torch.flip(p, axes) if axes else p
    prob /= len(flips)
    log.debug(
        "predicted %s on %s (tta=%s, resampled=%s, bfloat16=%s)",
        model.card.name,
        tuple(in_shape),
        tta,
        resample,
        bf16,
    )
    return resize_to_shape(prob[0].numpy(), in_shape)


class Predictor:
    """A loaded model ready to segment volumes (thin holder around `predict_volume`).

    Args:
        name_or_path: shipped model name, model file or folder.
        device: torch device (default: CUDA when available).
        tta: mirror test-time augmentation (None: as the model card says).
        batch_size: windows per forward pass.
        precision: ``"auto"``, ``"float32"`` or ``"bfloat16"`` (see the module).

    Example:
        >>> Predictor("no-such-model")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        neurolesion.errors.InputError: no-such-model: not a model file, ...
    """

    def __init__(
        self,
        name_or_path: str,
        device: str | None = None,
        tta: bool | None = None,
        batch_size: int = 2,
        precision: str = "auto",
    ) -> None:
        self.model = load_model(name_or_path)
        self.device = device
        self.tta = tta
        self.batch_size = batch_size
        self.precision = precision

    def __call__(
        self, image: np.ndarray, spacing: Sequence[float], present: Sequence[bool] | None = None
    ) -> np.ndarray:
        """(K, X, Y, Z) probabilities for a normalised (C, X, Y, Z) image."""
        return predict_volume(
            self.model,
            image,
            spacing,
            present,
            tta=self.tta,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
        )
