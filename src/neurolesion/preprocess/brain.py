"""Brain extraction from co-registered images of any contrast, with or without skull.

Methods are named and pluggable: a method takes the co-registered images of a case (sequence -> Volume, all
on one grid) and returns a brain probability on that grid. `extract_brain` thresholds it, keeps the largest
connected component and fills holes. A learned any-contrast model registers itself under its own name:

    >>> @register_brain_method("my-model")  # doctest: +SKIP
    ... def my_model(images): return predict(images)

Built in:
- "deepbet": the deepbet T1 network (shipped weights, offline) run on each of FLAIR, T1 and T2 present (on
  every contrast when none of them is), at 1 mm RAS, probabilities averaged and cut at 0.7. Measured on raw
  clinical FLAIR/T1/T2 (docs/preprocess.md) it beats deepbet run on any single contrast; adding T1c, T2*
  and SWI made it worse on simulated six-sequence heads and twice as slow.
- "deepbet-t1": deepbet on T1 (or T1c) only, carried to the other contrasts by the co-registration.
- "nonzero": for images already skull-stripped (the voxels non-zero in most images).
- "model": the shipped brain extraction model (a model whose card has the task "brain", trained by
  ``neurolesion train --config configs/brain_unet.yaml``), run on every contrast present, probabilities
  averaged. Any trained model file registers the same way: ``register_brain_method("mine")(model_method(path))``.
"auto" is "nonzero" when the first image (the reference) looks skull-stripped, otherwise "model" when a
brain model is shipped, "deepbet" when none is.

Example:
    >>> mask = extract_brain({"flair": flair_on_grid, "t1": t1_on_grid})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cc3d
import numpy as np
from scipy import ndimage

from neurolesion.errors import InputError
from neurolesion.preprocess.orientation import reorient
from neurolesion.preprocess.resample import Grid, grid_for_spacing, resample
from neurolesion.volume import Volume

if TYPE_CHECKING:
    from neurolesion.models.card import LoadedModel

log = logging.getLogger(__name__)

BrainMethod = Callable[[Mapping[str, Volume]], np.ndarray]
_METHODS: dict[str, tuple[BrainMethod, float]] = {}
#: What "auto" stands for (the best measured built-in method).
AUTO_METHOD = "deepbet"
#: Threshold of the averaged deepbet probability: deepbet's 0.5 over-segments raw clinical scans by 3-6 %
#: (measured against the expert masks of real-ms/longitudinal); 0.7 removes that bias (docs/preprocess.md).
DEEPBET_MEAN_THRESHOLD = 0.7
#: Volume (litres) of the non-zero region that marks an input as already skull-stripped.
STRIPPED_LITRES: tuple[float, float] = (0.5, 2.0)
#: The contrasts "deepbet" averages when present. On 4 simulated heads with all six sequences their mean
#: scored Dice 0.917-0.938 against 0.908-0.933 for the mean over all six (deepbet alone on T2*, SWI or T2:
#: 0.865-0.894), at half the time (deepbet takes 3-5 s per contrast on 2 cores).
DEEPBET_MEAN_SEQUENCES: tuple[str, ...] = ("flair", "t1", "t2")
#: Sequences deepbet's T1 network sees as T1-like.
T1_LIKE: tuple[str, ...] = ("t1", "t1c")
#: The task a learned brain extraction model's card lists.
BRAIN_TASK = "brain"


def register_brain_method(name: str, threshold: float = 0.5) -> Callable[[BrainMethod], BrainMethod]:
    """Decorator registering a brain extraction method under `name` (overrides an existing one).

    Args:
        name: the name `extract_brain` and `prepare(brain=...)` accept.
        threshold: the probability threshold the method's output is cut at by default.
    """

    def decorate(method: BrainMethod) -> BrainMethod:
        _METHODS[name] = (method, threshold)
        return method

    return decorate


def available_methods() -> list[str]:
    """Names accepted by `extract_brain` (besides "auto")."""
    return sorted(_METHODS)


@functools.lru_cache(maxsize=1)
def _deepbet_model() -> Any:
    from deepbet.bet import BrainExtraction  # heavy import (torch): only when used

    return BrainExtraction(no_gpu=True)


def deepbet_probability(volume: Volume) -> np.ndarray:
    """deepbet's brain probability for one image, on the image's grid.

    The network expects a roughly 1 mm image in RAS orientation: other grids are resampled there and the
    probability is brought back (linear interpolation).

    Example:
        >>> p = deepbet_probability(t1)  # doctest: +SKIP
    """
    ras = reorient(volume)
    one_mm = grid_for_spacing(Grid.of(ras), (1.0, 1.0, 1.0))
    work = ras if np.allclose(ras.spacing, 1.0, atol=0.05) else resample(ras, one_mm, extend_edges=True)
    probability = np.asarray(_deepbet_model().run_model(work.data.copy()), dtype=np.float32)
    on_work = work.with_array(probability)
    if not on_work.same_grid(ras):
        on_work = resample(on_work, Grid.of(ras), extend_edges=True)
    return resample(on_work, Grid.of(volume)).data


@register_brain_method("deepbet", threshold=DEEPBET_MEAN_THRESHOLD)
def deepbet_mean(images: Mapping[str, Volume]) -> np.ndarray:
    """Mean of deepbet's probabilities over FLAIR, T1 and T2 (`DEEPBET_MEAN_SEQUENCES`) when any of them is
    present, else over every contrast."""
    chosen = [seq for seq in images if seq in DEEPBET_MEAN_SEQUENCES] or list(images)
    return np.mean([deepbet_probability(images[seq]) for seq in chosen], axis=0)


@register_brain_method("deepbet-t1")
def deepbet_t1(images: Mapping[str, Volume]) -> np.ndarray:
    """deepbet on the T1-like image (T1, else T1c); the mean over all contrasts when neither is present."""
    for seq in T1_LIKE:
        if seq in images:
            return deepbet_probability(images[seq])
    return deepbet_mean(images)


@register_brain_method("nonzero")
def nonzero(images: Mapping[str, Volume]) -> np.ndarray:
    """Fraction of the images that are non-zero at each voxel: the brain of already skull-stripped images.

    The images arrive interpolated onto the model grid, so the edge of each non-zero region is blurred by
    partial volume; a voxel counts as non-zero when its value reaches half of the image's typical (median)
    non-zero value, i.e. when it is at least about half inside the original region. This also drops
    tissue darker than half the typical value on most images, i.e. the sulcal and extra-cerebral CSF a
    stripping mask often keeps (ventricles come back when `clean_mask` fills holes): the result follows the
    brain convention the models are trained and normalised with (parenchyma plus inner CSF), not the
    stripping mask (patient19: 861 ml against a 1099 ml stripped region; keeping the whole region lowers
    the WMH Dice from 0.76 to 0.65, the z-score then spanning the CSF).
    """
    inside = []
    for volume in images.values():
        magnitude = np.abs(volume.data)
        typical = float(np.median(magnitude[magnitude > 0])) if magnitude.any() else 0.0
        inside.append(magnitude > 0.5 * typical)
    return np.mean(inside, axis=0).astype(np.float32)


def shipped_brain_model() -> Path | None:
    """The shipped brain extraction model file (first by name whose card has the task "brain"), or None.

    Example:
        >>> shipped_brain_model()  # doctest: +SKIP
        PosixPath('.../neurolesion/models/weights/brain-unet.pt')
    """
    from neurolesion.models import card as cards  # heavy import (torch): only when used

    for shipped in cards.shipped_models():
        path = cards.WEIGHTS_DIR / f"{shipped.name}.pt"
        if BRAIN_TASK in shipped.tasks and path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=2)
def _brain_model(path: str, modified: float) -> LoadedModel:
    from neurolesion.models.card import load_model

    model = load_model(path)
    if BRAIN_TASK not in model.card.tasks:
        raise InputError(f"{path}: model {model.card.name} has no {BRAIN_TASK!r} output ({model.card.tasks})")
    return model


def model_probability(model: LoadedModel, images: Mapping[str, Volume]) -> np.ndarray:
    """A brain extraction model's brain probability on the images' grid.

    Each image is brought to RAS (exact axis permutation) and normalised the way the model's card says
    (no brain mask needed for ``percentile-nonzero``); `predict_volume` resamples it to the model's spacing
    and the probability back (linear). A contrast-agnostic (`any_input`) model runs on every image alone
    and the probabilities are averaged; other models get the sequences of their card as channels.

    Args:
        model: a loaded model with a "brain" output.
        images: sequence name -> Volume, all on one grid.

    Returns:
        (X, Y, Z) float32 probability on the grid of the images.

    Raises:
        InputError: an unknown normalisation, or none of the model's input sequences.
    """
    from neurolesion.infer.predict import predict_volume, stack_inputs
    from neurolesion.preprocess.normalize import normaliser

    card, cfg = model.card, model.config
    normalise = normaliser(card.normalisation, model.source)
    task = card.tasks.index(BRAIN_TASK)
    first = next(iter(images.values()))
    ras = {seq: reorient(volume) for seq, volume in images.items()}
    grid = next(iter(ras.values()))
    if cfg.any_input:
        runs = [(normalise(volume, None).array, [True]) for volume in ras.values()]
    else:
        used = {s: normalise(v, None).data for s, v in ras.items() if s in cfg.inputs}
        runs = [stack_inputs(used, cfg.inputs, model.source)]
    probability = np.mean(
        [predict_volume(model, image, grid.spacing, flags)[task] for image, flags in runs], axis=0
    )
    return resample(grid.with_array(probability), Grid.of(first)).data


def model_method(name_or_path: str | Path) -> BrainMethod:
    """A brain method running a trained brain extraction model (file, folder, checkpoint or shipped name).

    Example:
        >>> register_brain_method("brain1")(model_method("runs/brain1/best.pt"))  # doctest: +SKIP
    """

    def method(images: Mapping[str, Volume]) -> np.ndarray:
        from neurolesion.models.card import load_model

        return model_probability(load_model(name_or_path), images)

    return method


@register_brain_method("model")
def shipped_model(images: Mapping[str, Volume]) -> np.ndarray:
    """The shipped brain extraction model (see `shipped_brain_model`) on every contrast present.

    Raises:
        InputError: no brain model is shipped.
    """
    path = shipped_brain_model()
    if path is None:
        raise InputError("brain extraction 'model': no brain model is shipped; use 'deepbet' or 'auto'")
    return model_probability(_brain_model(str(path), path.stat().st_mtime), images)


def looks_skull_stripped(volume: Volume) -> bool:
    """True when the non-zero voxels form one compact brain-sized region (the input is already stripped).

    Raw scans have a head of 2.5-4.5 l around the brain (their background may be exactly 0 too); a stripped
    brain is 0.5-2 l in one piece.

    Example:
        >>> looks_skull_stripped(Volume(np.ones((10, 10, 10)), np.eye(4)))
        False
    """
    inside = volume.data != 0
    litres = inside.sum() * np.prod(volume.spacing) / 1e6
    if not STRIPPED_LITRES[0] <= litres <= STRIPPED_LITRES[1]:
        return False
    largest = cc3d.largest_k(inside, k=1, connectivity=26) > 0
    return bool(largest.sum() >= 0.95 * inside.sum())


def clean_mask(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Threshold, keep the largest connected component (26-connected), fill holes slice-free in 3D.

    Example:
        >>> p = np.zeros((9, 9, 9)); p[2:7, 2:7, 2:7] = 1; p[4, 4, 4] = 0; p[0, 0, 0] = 1
        >>> int(clean_mask(p).sum())
        125
    """
    mask = probability > threshold
    if not mask.any():
        return mask
    largest = cc3d.largest_k(mask, k=1, connectivity=26) > 0
    filled: np.ndarray = ndimage.binary_fill_holes(largest)
    return filled


def extract_brain(
    images: Mapping[str, Volume], method: str = "auto", threshold: float | None = None
) -> np.ndarray:
    """Brain mask of co-registered images (all on one grid).

    Args:
        images: sequence name -> Volume, every one on the same grid; the reference first.
        method: a name from `available_methods()`, or "auto".
        threshold: probability threshold; the method's own default when None.

    Returns:
        Boolean (X, Y, Z) mask on the images' grid.

    Raises:
        InputError: unknown method, or an empty mask (no brain found).
        ValueError: images on different grids.
    """
    first = next(iter(images.values()))
    name = method
    if method == "auto":
        if looks_skull_stripped(first):
            name = "nonzero"
        else:
            name = "model" if shipped_brain_model() is not None else AUTO_METHOD
    if name not in _METHODS:
        raise InputError(
            f"brain extraction method {method!r} unknown; expected 'auto' or one of {available_methods()}"
        )
    if any(not volume.same_grid(first) for volume in images.values()):
        raise ValueError("brain extraction needs every image on one grid (co-register them first)")
    function, default = _METHODS[name]
    mask = clean_mask(function(images), default if threshold is None else threshold)
    if not mask.any():
        raise InputError(f"{first.name or 'image'}: no brain found by {name!r} brain extraction")
    log.info("brain extraction %s: %.1f ml", name, mask.sum() * np.prod(first.spacing) / 1000)
    return mask
