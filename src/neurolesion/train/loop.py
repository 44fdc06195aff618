"""The training loop: patches -> augmentation -> network -> loss, validation, checkpoints, exact resume.

Every step's data and augmentation are drawn from generators seeded by ``(seed, step)`` and the torch
seed is reset the same way, so a run resumed from ``last.pt`` continues exactly as if it had not stopped
(for ``blobs`` and ``folder`` sources; the simulator's stream keeps its own state).
Checkpoints hold weights, optimiser, scheduler, step, history, the configuration, the model card and
package versions; ``best.pt`` is the one with the highest mean validation Dice.

Example:
    >>> from neurolesion.train.config import TrainConfig
    >>> cfg = TrainConfig.from_mapping({"steps": 2, "val_every": 2, "val_cases": 1, "device": "cpu",
    ...     "model": {"channels": [4, 8], "patch_size": [16, 16, 16]},
    ...     "sampler": {"blob_cases": 2, "blob_shape": [24, 24, 24]}})
    >>> result = train(cfg, "runs/toy")  # doctest: +SKIP
    >>> result.history[-1]["mean_dice"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import neurolesion
from neurolesion.errors import InputError
from neurolesion.infer.predict import native_bfloat16, predict_volume
from neurolesion.io.nifti import load_nifti
from neurolesion.metrics.lesionwise import match_lesions
from neurolesion.metrics.overlap import dice
from neurolesion.models.card import (
    LoadedModel,
    ModelCard,
    checkpoint_payload,
    load_model,
    required_inputs,
)
from neurolesion.models.config import to_mapping
from neurolesion.models.networks import build_network
from neurolesion.train.augment import Augmenter
from neurolesion.train.config import TrainConfig
from neurolesion.train.data import CaseArrays, Patch, blob_case, case_folders, load_case_folder, sample_patch
from neurolesion.train.losses import build_loss
from neurolesion.train.splits import kfold_split

if TYPE_CHECKING:
    from neurolesion.synth.patches import PatchStream

log = logging.getLogger(__name__)


class CaseStore:
    """Case folders loaded on demand, the most recently used ``capacity`` kept in memory.

    ``load_options`` go to `load_case_folder` (normalisation, spacing).
    """

    def __init__(
        self,
        folders: Sequence[Path],
        inputs: Sequence[str],
        outputs: Sequence[str],
        capacity: int = 24,
        **load_options: Any,
    ):
        self.folders = list(folders)
        self.inputs, self.outputs, self.capacity = tuple(inputs), tuple(outputs), capacity
        self.load_options = load_options
        self._cache: OrderedDict[int, CaseArrays] = OrderedDict()

    def __len__(self) -> int:
        return len(self.folders)

    def __getitem__(self, i: int) -> CaseArrays:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        case = load_case_folder(self.folders[i], self.inputs, self.outputs, **self.load_options)
        self._cache[i] = case
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return case


def _label_stats(folder: Path, outputs: Sequence[str]) -> tuple[int, float]:
    """Lesion count and volume (ml) of a case folder, from its label maps."""
    count, volume = 0, 0.0
    for task in outputs:
        p = folder / f"{task}_labels.nii.gz"
        if p.is_file():
            vol = load_nifti(p, label=True)
            ids = vol.data
            count += len(np.unique(ids[ids > 0]))
            volume += float((ids > 0).sum()) * float(np.prod(vol.spacing)) / 1000.0
    return count, volume


def folder_split(cfg: TrainConfig, fold: int) -> tuple[list[Path], list[Path]]:
    """Training and validation case folders of one fold of the stratified K-fold split.

    Raises:
        InputError: ``fold`` outside 0..folds-1, or too few cases.
    """
    if not 0 <= fold < cfg.folds:
        raise InputError(f"--fold {fold}: expected 0..{cfg.folds - 1} for a {cfg.folds}-fold split")
    assert cfg.sampler.folder is not None
    folders = case_folders(cfg.sampler.folder)
    stats = [_label_stats(f, cfg.model.outputs) for f in folders]
    folds = kfold_split(
        [f.name for f in folders], [s[0] for s in stats], [s[1] for s in stats], cfg.folds, cfg.seed
    )
    val = set(folds[fold])
    return [f for f in folders if f.name not in val], [f for f in folders if f.name in val]


def _synth_stream(cfg: TrainConfig, seed: int) -> PatchStream:
    """The simulator's on-the-fly patch stream (imported lazily: the simulator loads anatomy data)."""
    from neurolesion.synth.patches import PatchStream

    m = cfg.model
    return PatchStream(
        tasks=m.outputs,
        sequences=m.inputs,
        patch_size=m.patch_size,
        lesion_prob=cfg.sampler.lesion_prob,
        seed=seed,
    )


#: Offset between a run's training stream seed and the seed of its held-out simulated validation heads.
VALIDATION_SEED_OFFSET = 1_000_003


class TrainingData:
    """Draws the batch of a given step, reproducibly, from blobs, case folders and/or the simulator.

    Args:
        cfg: training configuration.
        train_cases: in-memory cases or a `CaseStore` (None for a simulator-only run).
    """

    def __init__(self, cfg: TrainConfig, train_cases: Sequence[CaseArrays] | CaseStore | None) -> None:
        self.cfg = cfg
        self.cases = train_cases
        src = cfg.sampler.source
        self.stream = iter(_synth_stream(cfg, cfg.seed)) if src in ("synth", "mixed") else None
        self.augment = Augmenter(cfg.augment)

    def _patch(self, rng: np.random.Generator) -> Patch:
        s = self.cfg.sampler
        use_synth = self.stream is not None and (self.cases is None or rng.random() < s.synth_fraction)
        if use_synth:
            assert self.stream is not None
            return next(self.stream)
        assert self.cases is not None
        case = self.cases[int(rng.integers(len(self.cases)))]
        m = self.cfg.model
        return sample_patch(
            case,
            rng,
            m.patch_size,
            s.lesion_prob,
            s.class_balanced,
            m.any_input,
            s.negative_prob,
            s.lesion_balanced,
        )

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, label) tensors of shape (B, C, *patch) and (B, K, *patch) for ``step``."""
        rng = np.random.default_rng([self.cfg.seed, step])
        patches = [
            self.augment(self._patch(rng), int(rng.integers(2**31)))
            for _ in range(self.cfg.sampler.batch_size)
        ]
        image = torch.from_numpy(np.stack([p["image"] for p in patches]))
        label = torch.from_numpy(np.stack([p["label"] for p in patches]))
        return image, label


def validate(
    model: LoadedModel, cases: Sequence[CaseArrays], device: torch.device, sw_batch: int = 2
) -> dict[str, Any]:
    """Voxel Dice and lesion-wise F1 (overlap rule) per task, averaged over whole held-out cases.

    Lesion predictions are counted inside the brain mask only; a ``brain`` output is scored as it is. An
    `any_input` network is run on each present sequence of a case alone, and scored on each.

    Args:
        model: the network (any mode; left in eval mode) with its configuration.
        cases: validation cases.
        device: where to run.
        sw_batch: windows per forward pass.

    Returns:
        ``{"dice": {task: mean}, "f1": {task: mean}, "mean_dice": float, "mean_f1": float}``.
    """
    tasks = model.config.outputs
    d: dict[str, list[float]] = {t: [] for t in tasks}
    f: dict[str, list[float]] = {t: [] for t in tasks}
    for case in cases:
        if model.config.any_input:
            runs = [(case.image[c : c + 1], np.ones(1, bool)) for c in np.flatnonzero(case.present)]
        else:
            runs = [(case.image, case.present)]
        for image, present in runs:
            prob = predict_volume(model, image, case.spacing, present, batch_size=sw_batch, device=device)
            for k, t in enumerate(tasks):
                pred = prob[k] > 0.5
                if t != "brain":
                    pred &= case.brain
                d[t].append(dice(pred, case.label[k] > 0))
                f[t].append(match_lesions(pred, case.label[k] > 0, case.spacing, rule="overlap").f1)
    out_d = {t: float(np.mean(v)) for t, v in d.items()}
    out_f = {t: float(np.mean(v)) for t, v in f.items()}
    return {
        "dice": out_d,
        "f1": out_f,
        "mean_dice": float(np.mean(list(out_d.values()))),
        "mean_f1": float(np.mean(list(out_f.values()))),
    }


@dataclass(frozen=True)
class TrainResult:
    """What a run produced.

    Attributes:
        best: path of ``best.pt``.
        last: path of ``last.pt``.
        history: one entry per validation (step, train loss, Dice, F1, elapsed seconds).
    """

    best: Path
    last: Path
    history: list[dict[str, Any]]


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but CUDA is not available")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _cases(
    cfg: TrainConfig, fold: int | None
) -> tuple[Sequence[CaseArrays] | CaseStore | None, list[CaseArrays], dict[str, Any]]:
    """Training cases, validation cases and the card's description of the training data."""
    s, m = cfg.sampler, cfg.model
    if s.source == "blobs":
        train_cases = [
            blob_case(np.random.default_rng([cfg.seed, 1, i]), s.blob_shape, m.inputs, m.outputs, f"blob{i}")
            for i in range(s.blob_cases)
        ]
        val = [
            blob_case(np.random.default_rng([cfg.seed, 2, i]), s.blob_shape, m.inputs, m.outputs, f"val{i}")
            for i in range(cfg.val_cases)
        ]
        return train_cases, val, {"source": "blobs", "cases": s.blob_cases, "seed": cfg.seed}
    if s.folder is None:
        val_seed = cfg.seed + VALIDATION_SEED_OFFSET
        stream = _synth_stream(cfg, val_seed)
        info = {"source": "synth", "stream_seed": cfg.seed, "validation_stream_seed": val_seed}
        info["simulator_version"] = neurolesion.__version__
        return None, [stream.head(i) for i in range(cfg.val_cases)], info
    k = 0 if fold is None else fold
    train_dirs, val_dirs = folder_split(cfg, k)
    load_options: dict[str, Any] = {"normalisation": m.normalisation}
    if s.resample:
        load_options["spacing"] = m.spacing
    val = [load_case_folder(p, m.inputs, m.outputs, **load_options) for p in val_dirs[: cfg.val_cases]]
    if s.negative_prob > 0:  # hard negatives are drawn from training cases only
        load_options["negative_codes"] = s.negative_codes
        load_options["negative_inside_codes"] = s.negative_inside_codes
    if cfg.augment.enabled and cfg.augment.p_tissue > 0:  # training cases only, like hard negatives
        load_options["tissue"] = True
    info = {
        "source": s.source,
        "folder": s.folder,
        "fold": k,
        "folds": cfg.folds,
        "train_cases": len(train_dirs),
    }
    info.update(_simulator_info(s.folder))
    store = None
    if s.source != "synth":
        store = CaseStore(train_dirs, m.inputs, m.outputs, s.cache_cases, **load_options)
    return store, val, info


def _simulator_info(folder: str) -> dict[str, Any]:
    """Simulator version and seed range recorded in the cases' ``case.json`` files (when present)."""
    seeds, version = [], None
    for js in sorted(Path(folder).glob("*/case.json")):
        try:
            meta = json.loads(js.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(meta.get("seed"), int):
            seeds.append(meta["seed"])
        version = meta.get("neurolesion_version", meta.get("version", version))
    out: dict[str, Any] = {}
    if seeds:
        out["seed_range"] = [min(seeds), max(seeds)]
    if version is not None:
        out["simulator_version"] = version
    return out


def _save(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    fold: int | None = None,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    on_validate: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train one model (one fold).

    Args:
        cfg: training configuration.
        out_dir: where ``best.pt``, ``last.pt`` and ``history.json`` go.
        fold: validation fold of a folder source (default 0); ignored for blobs.
        resume: continue from ``out_dir/last.pt`` (exactly; see the module).
        on_step: called after every step with (step, loss), e.g. to drive a progress bar.
        on_validate: called with each validation's history entry.

    Returns:
        Paths of the checkpoints and the validation history.

    Raises:
        InputError: bad data source, fold or device; a resume checkpoint that does not match ``cfg``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg)
    torch.manual_seed(cfg.seed)
    train_cases, val_cases, data_info = _cases(cfg, fold)
    data = TrainingData(cfg, train_cases)
    net = build_network(cfg.model)
    if cfg.init_weights:
        _init_weights(net, cfg)
    net = net.to(device)
    loss_fn = build_loss(cfg.loss)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / cfg.steps) ** 0.9)
    use_amp = cfg.amp and device.type == "cuda"
    autocast_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    cpu_bf16 = cfg.cpu_bf16 and device.type == "cpu"
    if cpu_bf16 and not native_bfloat16(device):
        # emulated bfloat16 costs about 15x per step (0.6 s -> 10 s on a 2-core AVX2 machine)
        log.warning("cpu_bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX); training in float32")
        cpu_bf16 = False
    use_autocast = use_amp or cpu_bf16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict[str, Any]] = []
    start, best = 0, -math.inf
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume:
        start, history, best = _restore(last_path, cfg, net, opt, sched, scaler)
    losses: list[float] = []
    aug = cfg.augment
    required = required_inputs(
        cfg.model.inputs, aug.channel_dropout, aug.channel_dropout_keep, aug.channel_dropout_one_of
    )
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        net.train()
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        image, label = data.batch(step)
        image, label = image.to(device), label.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_autocast):
            loss = loss_fn(net(image).float(), label.float())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, losses[-1])
        if (step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps:
            card = ModelCard.for_config(cfg.name, cfg.model, data_info)
            scores = validate(LoadedModel(net, cfg.model, card), val_cases, device, cfg.sw_batch)
            entry = {
                "step": step + 1,
                "loss": float(np.mean(losses)),
                **scores,
                "seconds": time.perf_counter() - t0,
            }
            history.append(entry)
            losses = []
            if on_validate is not None:
                on_validate(entry)
            log.info(
                "step %d loss %.4f dice %.3f f1 %.3f",
                step + 1,
                entry["loss"],
                scores["mean_dice"],
                scores["mean_f1"],
            )
            validation = {"step": step + 1, **scores}
            card = ModelCard.for_config(cfg.name, cfg.model, data_info, validation, required)
            payload = {
                **checkpoint_payload(net, cfg.model, card),
                "train_config": to_mapping(cfg),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step + 1,
                "history": history,
                "best": max(best, scores["mean_dice"]),
            }
            if scores["mean_dice"] > best:
                best = scores["mean_dice"]
                _save(best_path, payload)
                (out / "best.json").write_text(card.to_json())
            _save(last_path, payload)
            (out / "history.json").write_text(json.dumps(history, indent=2))
    return TrainResult(best=best_path, last=last_path, history=history)


def _resume_key(cfg: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run must share with its checkpoint (not threads, device, validation batch)."""
    return {k: v for k, v in cfg.items() if k not in ("threads", "device", "sw_batch")}


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings whose values differ between two nested mappings."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


#: Layers whose parameters `init_weights` may leave behind or start new when the norm changes.
NORM_LAYERS = (torch.nn.BatchNorm3d, torch.nn.InstanceNorm3d)


def _init_weights(net: torch.nn.Module, cfg: TrainConfig) -> None:
    """Start from the weights of `cfg.init_weights` (a model file or checkpoint of the same network, which
    may differ in its norm layers and input normalisation)."""
    source = load_model(str(cfg.init_weights))
    theirs, ours = to_mapping(source.config), to_mapping(cfg.model)
    free = {"norm": None, "normalisation": None}  # they change no weight's shape
    if {**theirs, **free} != {**ours, **free}:
        raise InputError(
            f"{cfg.init_weights}: init_weights hold a {source.config.arch} with another configuration; "
            f"expected the run's model section ({cfg.model.arch}, inputs {list(cfg.model.inputs)}, "
            f"outputs {list(cfg.model.outputs)}, channels {list(cfg.model.channels)})"
        )
    if theirs["norm"] == ours["norm"]:
        net.load_state_dict(source.net.state_dict())
    else:  # e.g. instance -> batch norm: the convolutions carry over, the norm layers start as new
        result = net.load_state_dict(source.net.state_dict(), strict=False)
        norms = {name for name, m in net.named_modules() if isinstance(m, NORM_LAYERS)}
        stray = [
            k for k in [*result.missing_keys, *result.unexpected_keys] if k.rsplit(".", 1)[0] not in norms
        ]
        if stray:
            raise InputError(f"{cfg.init_weights}: weights do not fit the run's network ({stray[:3]})")
    log.info(
        "initialised %s from %s (norm %s -> %s)", cfg.name, cfg.init_weights, theirs["norm"], ours["norm"]
    )


def _restore(
    path: Path,
    cfg: TrainConfig,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> tuple[int, list[dict[str, Any]], float]:
    """Load a ``last.pt`` into the run's objects; returns (step, history, best)."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    # Read the stored configuration through today's loader so that settings added since (with their
    # defaults) do not count as differences.
    stored = to_mapping(TrainConfig.from_mapping(ck.get("train_config", {}), where=str(path)))
    changed = _differences(_resume_key(stored), _resume_key(to_mapping(cfg)))
    if changed:
        raise InputError(
            f"{path}: checkpoint was made with a different training configuration "
            f"({', '.join(changed)} differ); cannot resume"
        )
    net.load_state_dict(ck["state_dict"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    scaler.load_state_dict(ck["scaler"])
    return int(ck["step"]), list(ck["history"]), float(ck["best"])
