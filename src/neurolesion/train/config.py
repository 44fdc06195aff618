"""Training configuration: frozen dataclasses loaded from YAML and validated on load.

A YAML file has the sections ``model``, ``loss``, ``sampler``, ``augment`` and top-level training keys;
every section is optional (defaults below). See ``configs/*.yaml``.

Example:
    >>> cfg = TrainConfig.from_mapping({"steps": 10, "model": {"arch": "unet"}, "loss": {"name": "dice"}})
    >>> cfg.steps, cfg.model.arch, cfg.loss.name, cfg.sampler.lesion_prob
    (10, 'unet', 'dice', 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from neurolesion.errors import InputError
from neurolesion.models.config import ModelConfig, from_mapping


@dataclass(frozen=True)
class LossConfig:
    """Which loss, and its parameters.

    Attributes:
        name: ``dice``, ``dice_ce``, ``dice_topk`` (0.5 Dice + 0.5 TopK-BCE), ``iw_bce`` (inversely-weighted
            BCE), ``dice_iw_bce`` (Dice + inversely-weighted BCE), ``dice_blob`` (Dice + BCE + ``blob_weight``
            x the mean per-lesion Dice, `neurolesion.train.losses.blob_dice`) or ``focal``.
        topk: fraction of hardest voxels kept by TopK.
        blob_weight: weight of the per-lesion Dice in ``dice_blob``.
        focal_gamma: focusing parameter of the focal loss.
    """

    name: Literal["dice", "dice_ce", "dice_topk", "iw_bce", "dice_iw_bce", "dice_blob", "focal"] = "dice_ce"
    topk: float = 0.1
    focal_gamma: float = 2.0
    blob_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.topk <= 1.0:
            raise ValueError(f"topk {self.topk} must be in (0, 1]")
        if self.focal_gamma < 0:
            raise ValueError(f"focal_gamma {self.focal_gamma} must be >= 0")
        if not 0.0 < self.blob_weight <= 10.0:
            raise ValueError(f"blob_weight {self.blob_weight} must be in (0, 10]")


@dataclass(frozen=True)
class SamplerConfig:
    """Where patches come from and how their centres are chosen.

    Attributes:
        source: ``folder`` (simulated or real cases on disk), ``synth`` (the simulator's on-the-fly
            `PatchStream`), ``mixed`` (both) or ``blobs`` (spheres in noise, for smoke tests).
        folder: case folder root for ``folder`` / ``mixed`` (each case a sub-folder); with ``synth`` it is
            optional and gives the validation cases (otherwise held-out simulated heads are used).
        synth_fraction: share of patches drawn from the simulator when ``mixed``.
        lesion_prob: probability that a patch centre lies in a lesion ("tumour sampling").
        class_balanced: choose the task first (uniformly among those with lesions), then its lesion voxel.
        lesion_balanced: choose one of the task's lesions (26-connected components) uniformly, then its
            voxel, so that a 3 mm lesion is centred as often as a 3 cm one in the same case; otherwise the
            voxel is drawn among all the task's lesion voxels and large lesions take almost every centre.
        negative_prob: probability that a patch centre not on a lesion lies on a hard negative: the brain's
            2-voxel border with the anatomy regions ``negative_codes`` of a simulated case
            (``anatomy.nii.gz``), where partial volume mimics lesions; cases without it use any brain voxel.
        negative_codes: anatomy codes (`neurolesion.anatomy.labels.Tissue`) of those regions; default the
            ventricles (7) and the extra-cerebral CSF (8), whose walls look like FLAIR-bright rims.
        negative_inside_codes: anatomy codes whose whole region inside the brain (not only its border) also
            holds hard negatives, e.g. the cerebellar grey and white matter (10, 11), which the simulator's
            tissue jitter can make as FLAIR-bright as a lesion.
        batch_size: patches per step.
        blob_cases: number of toy cases generated for ``blobs``.
        blob_shape: spatial shape of each toy case.
        cache_cases: case folders kept in memory at once (``folder`` / ``mixed``). Patches are drawn from
            random cases, so a cache smaller than the training set reloads a case from disk for most
            patches; on a CPU that loading, not the network, then sets the pace. About 100 MB per 1 mm
            case and input sequence.
        resample: resample every case folder to the model's ``spacing`` on load (e.g. 2 mm for a
            whole-head brain extraction network); otherwise cases keep their own grid.
    """

    source: Literal["folder", "synth", "mixed", "blobs"] = "blobs"
    folder: str | None = None
    synth_fraction: float = 0.5
    lesion_prob: float = 0.5
    class_balanced: bool = True
    lesion_balanced: bool = False
    negative_prob: float = 0.0
    negative_codes: tuple[int, ...] = (7, 8)
    negative_inside_codes: tuple[int, ...] = ()
    batch_size: int = 2
    blob_cases: int = 8
    blob_shape: tuple[int, int, int] = (64, 64, 64)
    cache_cases: int = 24
    resample: bool = False

    def __post_init__(self) -> None:
        if self.source in ("folder", "mixed") and not self.folder:
            raise ValueError(f"source {self.source!r} needs 'folder' (a directory of cases)")
        for name in ("synth_fraction", "lesion_prob", "negative_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} {v} must be in [0, 1]")
        for name in ("negative_codes", "negative_inside_codes"):
            codes = getattr(self, name)
            if any(c < 0 for c in codes):
                raise ValueError(f"{name} {codes} must be anatomy codes >= 0")
        if self.batch_size < 1 or self.blob_cases < 2 or self.cache_cases < 1:
            raise ValueError("batch_size and cache_cases must be >= 1 and blob_cases >= 2")


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation (MONAI transforms); each ``p_*`` is the probability of applying one.

    Attributes:
        rotate_deg: maximum absolute rotation about each axis, degrees.
        scale: (min, max) isotropic scaling factor.
        channel_dropout: probability of zeroing each present input channel (at least one is kept),
            so the network learns to work with missing sequences.
        channel_dropout_keep: the first N input channels (the model's primary sequences, e.g. FLAIR for
            WMH) are never dropped.
        channel_dropout_one_of: at least one of the first N input channels is always kept (alternatives
            such as SWI or T2* for microbleeds, of which a case may hold either); 0 = any channel.
        p_contrast: probability of multiplying each channel's z-scored intensities by its own factor from
            `contrast_range` (nnU-Net's contrast augmentation; 0 by default so that earlier configurations
            train as they did): a lesion's contrast in brain-SD units varies between real scans with the
            lesion load and the grey/white contrast that set the brain's spread.
        contrast_range: (min, max) of that factor.
        p_tissue: probability of giving each coarse tissue class of a simulated case (cortex, white
            matter, deep grey matter, CSF, cerebellum) its own intensity offset per channel, lesions moving
            with the tissue around them, then re-standardising with the whole brain's new statistics
            (`neurolesion.train.tissues`; needs the cases' ``anatomy.nii.gz``; 0 by default).
        tissue_shift: standard deviation of those offsets, in brain SDs.
    """

    enabled: bool = True
    rotate_deg: float = 45.0
    scale: tuple[float, float] = (0.9, 1.1)
    p_affine: float = 0.5
    p_flip: float = 0.5
    p_elastic: float = 0.1
    p_gamma: float = 0.3
    p_bias: float = 0.3
    p_noise: float = 0.2
    p_blur: float = 0.2
    p_lowres: float = 0.2
    channel_dropout: float = 0.2
    channel_dropout_keep: int = 0
    channel_dropout_one_of: int = 0
    p_contrast: float = 0.0
    contrast_range: tuple[float, float] = (0.65, 1.25)
    p_tissue: float = 0.0
    tissue_shift: float = 0.4

    def __post_init__(self) -> None:
        probs = {k: v for k, v in self.__dict__.items() if k.startswith("p_") or k == "channel_dropout"}
        for k, v in probs.items():
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{k} {v} must be in [0, 1]")
        for name in ("channel_dropout_keep", "channel_dropout_one_of"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} {getattr(self, name)} must be >= 0")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale {self.scale} must be (min, max) with 0 < min <= max")
        if len(self.contrast_range) != 2 or not 0 < self.contrast_range[0] <= self.contrast_range[1]:
            raise ValueError(f"contrast_range {self.contrast_range} must be (min, max) with 0 < min <= max")
        if not 0.0 <= self.tissue_shift <= 3.0:
            raise ValueError(f"tissue_shift {self.tissue_shift} must be in [0, 3] brain SDs")


@dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        name: model name (checkpoint card, output folder).
        steps: optimisation steps.
        lr: AdamW learning rate (polynomial decay to 0).
        weight_decay: AdamW weight decay.
        val_every: validate (and checkpoint) every N steps.
        val_cases: held-out cases used for validation (blobs / synth); folder runs use the fold.
        folds: K of the patient-wise K-fold split.
        seed: master seed; every step's data and augmentation derive from (seed, step), which makes
            resuming exact.
        threads: CPU threads for torch (0 = leave torch's default).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        amp: mixed precision on CUDA (float16 with loss scaling).
        cpu_bf16: bfloat16 autocast on the CPU (about 1.4x faster per step on CPUs with AVX512-BF16 or
            AMX). Ignored, with a warning, on CPUs without them, where it is about 15x slower.
        sw_batch: windows per batch during validation inference.
        init_weights: a model file or checkpoint whose weights start the run (fine-tuning, or continuing
            a finished run with a new schedule); its configuration must build the same network.
    """

    name: str = "model"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-5
    val_every: int = 100
    val_cases: int = 4
    folds: int = 5
    seed: int = 0
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    cpu_bf16: bool = False
    sw_batch: int = 2
    init_weights: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.val_every < 1 or self.val_cases < 1:
            raise ValueError("steps, val_every and val_cases must be >= 1")
        if self.folds < 2:
            raise ValueError(f"folds {self.folds} must be >= 2")
        if self.lr <= 0 or self.threads < 0:
            raise ValueError("lr must be > 0 and threads >= 0")

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a mapping; see `neurolesion.models.config.from_mapping`."""
        return from_mapping(cls, data, where)


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training configuration file.

    Args:
        path: YAML file.

    Returns:
        The validated configuration.

    Raises:
        InputError: missing or unreadable file, invalid YAML, unknown keys or invalid values (the message
            names the file and the setting).
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise InputError(f"{p}: cannot read training config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML ({exc})") from None
    return TrainConfig.from_mapping(data or {}, where=str(p))
