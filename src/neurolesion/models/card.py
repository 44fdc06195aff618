"""Trained models on disk: the model card, saving, loading and the registry of shipped weights.

A trained model is either a single ``.pt`` file (weights + config + card inside) or a folder holding
``model.pt`` and ``card.json``. Training checkpoints (``best.pt``, ``last.pt``) load the same way.
Shipped models live in ``neurolesion/models/weights/<name>.pt`` with ``<name>.json`` beside it.

Example:
    >>> import tempfile, torch
    >>> from neurolesion.models.config import ModelConfig
    >>> from neurolesion.models.networks import build_network
    >>> cfg = ModelConfig(channels=(4, 8), patch_size=(16, 16, 16))
    >>> d = tempfile.mkdtemp()
    >>> path = save_model(f"{d}/toy.pt", build_network(cfg), cfg, ModelCard.for_config("toy", cfg))
    >>> load_model(path).card.tasks
    ('wmh',)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

import neurolesion
from neurolesion.errors import InputError
from neurolesion.models.config import ModelConfig, from_mapping, to_mapping
from neurolesion.models.networks import build_network
from neurolesion.registry import TASKS

log = logging.getLogger(__name__)

FORMAT = "neurolesion-model/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"


def versions() -> dict[str, str]:
    """Versions of the packages that produced a model."""
    out = {"neurolesion": neurolesion.__version__, "torch": str(torch.__version__)}
    try:
        out["monai"] = metadata.version("monai")
    except metadata.PackageNotFoundError:
        out["monai"] = "not installed"
    return out


@dataclass(frozen=True)
class ModelCard:
    """What a trained model does and how it was made.

    Attributes:
        name: model name.
        tasks: output tasks, in channel order.
        labels: lesion types each task can produce (from the registry).
        inputs: input sequences, in channel order.
        spacing: voxel size expected, mm.
        normalisation: intensity normalisation the caller must apply.
        patch_size: training patch / inference window.
        arch: network architecture.
        training_data: source, simulator version, seed range, folder, fold.
        validation: validation figures (per-task Dice, lesion F1, step).
        versions: package versions at training time.
        evaluation: measured accuracy of the released model (held-out simulated test set, real scans),
            each figure with the command that reproduces it; filled when a model is exported.
        limitations: what the model is known not to do well, in plain words.
        postprocess: per task, post-processing chosen on validation cases (``min_size_mm3``,
            ``min_confidence``, and ``threshold``, the voxel probability threshold, 0.5 when absent;
            checked on construction by `neurolesion.infer.postprocess.check_operating_point`); `segment`
            and `predict_files` apply it on top of the registry's minimum size.
        tta: whether the operating point was chosen with mirror test-time augmentation, so that inference
            uses it unless the caller says otherwise.
        required: groups of input sequences the network was always trained with (one of each group was
            never dropped, see `required_inputs`); the model is run only when every group has a sequence
            present. Empty: any one input will do.
        below_target: for a model shipped short of the project's accuracy target, what falls short, in
            one line; `segment` repeats it among the case's warnings (summary.json, report). Empty: none.
    """

    name: str
    tasks: tuple[str, ...]
    labels: tuple[str, ...]
    inputs: tuple[str, ...]
    spacing: tuple[float, float, float]
    normalisation: str
    patch_size: tuple[int, int, int]
    arch: str
    training_data: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()
    postprocess: dict[str, dict[str, float]] = field(default_factory=dict)
    tta: bool = False
    required: tuple[tuple[str, ...], ...] = ()
    below_target: str = ""

    def __post_init__(self) -> None:
        from neurolesion.infer.postprocess import OPERATING_POINT_KEYS, check_operating_point

        for task, point in self.postprocess.items():
            where = f"model card {self.name}: postprocess[{task}]"
            if task not in self.tasks:
                raise InputError(f"{where}: {task!r} is not one of the model's tasks {list(self.tasks)}")
            unknown = sorted(set(point) - set(OPERATING_POINT_KEYS))
            if unknown:
                raise InputError(
                    f"{where}: unknown settings {unknown}; expected {list(OPERATING_POINT_KEYS)}"
                )
            check_operating_point(**{k: float(v) for k, v in point.items()}, where=where)

    def unmet_inputs(self, present: Iterable[str]) -> list[tuple[str, ...]]:
        """The groups of `required` (or, with none, all the inputs as one group) with no sequence present.

        Example:
            >>> from neurolesion.models.config import ModelConfig
            >>> card = ModelCard.for_config("m", ModelConfig(inputs=("t2", "t1")), required=(("t2",),))
            >>> card.unmet_inputs({"t1"}), card.unmet_inputs({"t2"})
            ([('t2',)], [])
        """
        have = set(present)
        groups = self.required or (tuple(self.inputs),)
        return [g for g in groups if not have.intersection(g)]

    def postprocess_settings(self, task: str) -> dict[str, Any]:
        """Keyword arguments of `neurolesion.infer.postprocess.postprocess` for `task`: the card's voxel
        threshold (0.5 when it names none), the larger of the registry's and the card's minimum size, the
        card's minimum confidence, and the registry's false-positive rule (``extra_axial``).

        Example:
            >>> from neurolesion.models.config import ModelConfig
            >>> card = ModelCard.for_config("m", ModelConfig())
            >>> replace(card, postprocess={"wmh": {"min_size_mm3": 20.0}}).postprocess_settings("wmh")
            {'threshold': 0.5, 'min_size_mm3': 20.0, 'min_confidence': 0.0, 'extra_axial': False}
        """
        own = self.postprocess.get(task, {})
        registry = TASKS.get(task)
        return {
            "threshold": float(own.get("threshold", 0.5)),
            "min_size_mm3": max(
                registry.min_size_mm3 if registry else 0.0, float(own.get("min_size_mm3", 0.0))
            ),
            "min_confidence": float(own.get("min_confidence", 0.0)),
            "extra_axial": registry.extra_axial if registry else False,
        }

    @classmethod
    def for_config(
        cls,
        name: str,
        cfg: ModelConfig,
        training_data: Mapping[str, Any] | None = None,
        validation: Mapping[str, Any] | None = None,
        required: tuple[tuple[str, ...], ...] = (),
    ) -> ModelCard:
        """A card filled from a model configuration (`required`: see `required_inputs`)."""
        return cls(
            name=name,
            tasks=cfg.outputs,
            labels=tuple(lt for t in cfg.outputs for lt in TASKS[t].lesion_types),
            inputs=cfg.inputs,
            spacing=cfg.spacing,
            normalisation=cfg.normalisation,
            patch_size=cfg.patch_size,
            arch=cfg.arch,
            training_data=dict(training_data or {}),
            validation=dict(validation or {}),
            versions=versions(),
            required=required,
        )

    def to_json(self) -> str:
        """The card as indented JSON."""
        return json.dumps(to_mapping(self), indent=2)


def required_inputs(
    inputs: tuple[str, ...], channel_dropout: float, keep_first: int, one_of_first: int
) -> tuple[tuple[str, ...], ...]:
    """The input groups a network always saw during training, from its channel-dropout settings.

    Without channel dropout every input was always there; ``keep_first`` channels were never dropped;
    ``one_of_first`` means one of the first N always stayed; otherwise any one input could be alone.

    Args:
        inputs: the model's input sequences, in channel order.
        channel_dropout: probability of dropping each channel in training.
        keep_first: the first N channels were never dropped.
        one_of_first: one of the first N channels always stayed.

    Returns:
        Groups of sequences; each needs one member present at inference.

    Example:
        >>> required_inputs(("swi", "t2star", "t1"), 0.3, 0, 2)
        (('swi', 't2star'),)
        >>> required_inputs(("flair", "t1"), 0.3, 1, 0)
        (('flair',),)
    """
    if channel_dropout <= 0.0:
        return tuple((s,) for s in inputs)
    if keep_first > 0:
        return tuple((s,) for s in inputs[:keep_first])
    if one_of_first > 0:
        return (tuple(inputs[:one_of_first]),)
    return (tuple(inputs),)


def _training_requirements(path: str | Path, inputs: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """`required_inputs` from the training configuration stored in a checkpoint; () when it has none."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    augment = payload.get("train_config", {}).get("augment") if isinstance(payload, dict) else None
    if not isinstance(augment, Mapping):
        return ()
    return required_inputs(
        inputs,
        float(augment.get("channel_dropout", 0.0)),
        int(augment.get("channel_dropout_keep", 0)),
        int(augment.get("channel_dropout_one_of", 0)),
    )


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network in eval mode with its configuration and card (what `load_model` returns).

    Attributes:
        net: the network, on CPU, in eval mode.
        config: the configuration it was built from.
        card: its model card.
        source: where it was loaded from.
    """

    net: nn.Module
    config: ModelConfig
    card: ModelCard
    source: str = ""


def checkpoint_payload(net: nn.Module, cfg: ModelConfig, card: ModelCard) -> dict[str, Any]:
    """The dict stored in every model file and training checkpoint (weights, config, card, versions)."""
    return {
        "format": FORMAT,
        "config": to_mapping(cfg),
        "card": to_mapping(card),
        "versions": versions(),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }


def save_model(path: str | Path, net: nn.Module, cfg: ModelConfig, card: ModelCard) -> Path:
    """Write a model: a ``.pt`` file, or a folder with ``model.pt`` and ``card.json`` when ``path`` has
    no ``.pt`` suffix. A ``.pt`` file also gets its card beside it as ``<name>.json``.

    Args:
        path: destination file (``*.pt``) or folder.
        net: trained network.
        cfg: its configuration.
        card: its card.

    Returns:
        The path of the written ``.pt`` file.
    """
    p = Path(path)
    target = p if p.suffix == ".pt" else p / "model.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".pt.tmp")
    torch.save(checkpoint_payload(net, cfg, card), tmp)
    tmp.replace(target)
    card_path = target.with_suffix(".json") if p.suffix == ".pt" else p / "card.json"
    card_path.write_text(card.to_json())
    return target


def export_model(
    checkpoint: str | Path,
    dest: str | Path,
    name: str | None = None,
    evaluation: Mapping[str, Any] | None = None,
    limitations: tuple[str, ...] = (),
    postprocess: Mapping[str, Mapping[str, float]] | None = None,
    tta: bool | None = None,
    below_target: str | None = None,
) -> Path:
    """Release a trained checkpoint as a model file: weights, configuration and a completed card only
    (no optimiser state), e.g. into `WEIGHTS_DIR` to ship it as a default.

    Args:
        checkpoint: a training checkpoint (``best.pt``) or any model file.
        dest: the ``.pt`` file to write (its card goes beside it as ``.json``).
        name: the released model's name (default: the checkpoint's).
        evaluation: measured accuracy with the commands that reproduce it.
        limitations: known weaknesses.
        postprocess: per-task post-processing chosen on validation cases (default: keep the checkpoint's).
        tta: whether inference uses mirror test-time augmentation by default (default: keep the checkpoint's).
        below_target: what falls short of the accuracy target, in one line (default: keep the checkpoint's).

    The card's `required` inputs are taken from the checkpoint's training configuration when the card has
    none (checkpoints written before cards held them).

    Returns:
        The written ``.pt`` path.

    Raises:
        InputError: the checkpoint cannot be loaded, or `dest` is not a ``.pt`` path.

    Example:
        >>> export_model("runs/wmh/best.pt", WEIGHTS_DIR / "wmh-unet.pt", evaluation={"dice": 0.8})  # doctest: +SKIP
    """
    target = Path(dest)
    if target.suffix != ".pt":
        raise InputError(f"{target}: a released model must be a .pt file")
    model = load_model(checkpoint)
    card = replace(
        model.card,
        name=name or model.card.name,
        evaluation=dict(evaluation or {}),
        limitations=tuple(limitations),
        postprocess=model.card.postprocess
        if postprocess is None
        else {t: {k: float(v) for k, v in kw.items()} for t, kw in postprocess.items()},
        tta=model.card.tta if tta is None else tta,
        below_target=model.card.below_target if below_target is None else below_target,
        required=model.card.required or _training_requirements(model.source, model.card.inputs),
    )
    return save_model(target, model.net, model.config, card)


def _model_file(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "model.pt"
        if not p.is_file():
            raise InputError(f"{name_or_path}: model folder has no model.pt")
        return p
    if p.is_file():
        return p
    shipped = WEIGHTS_DIR / f"{name_or_path}.pt"
    if shipped.is_file():
        return shipped
    names = ", ".join(c.name for c in shipped_models()) or "none shipped yet"
    raise InputError(f"{name_or_path}: not a model file, model folder or shipped model name ({names})")


def load_model(name_or_path: str | Path, strict: bool = True) -> LoadedModel:
    """Load a shipped model by name, or any model file, folder or training checkpoint.

    Args:
        name_or_path: a shipped model name (see `shipped_models`), a ``.pt`` file or a model folder.
        strict: require the weights to match the network exactly.

    Returns:
        The network in eval mode on CPU with its configuration and card.

    Raises:
        InputError: not found, not a neurolesion model, or weights that do not fit the configuration.
    """
    path = _model_file(name_or_path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: cannot read model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a neurolesion model (expected format {FORMAT})")
    cfg = ModelConfig.from_mapping(payload["config"], where=f"{path}:config")
    card = from_mapping(ModelCard, payload["card"], where=f"{path}:card")
    net = build_network(cfg)
    try:
        net.load_state_dict(payload["state_dict"], strict=strict)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit the stored {cfg.arch} configuration ({exc})") from None
    net.eval()
    log.debug("loaded %s (%s, tasks %s) from %s", card.name, cfg.arch, card.tasks, path)
    return LoadedModel(net=net, config=cfg, card=card, source=str(path))


def shipped_models() -> list[ModelCard]:
    """Cards of the models shipped in the package (``models/weights/*.json``), sorted by name."""
    cards = []
    for js in sorted(WEIGHTS_DIR.glob("*.json")):
        if js.with_suffix(".pt").is_file():
            cards.append(from_mapping(ModelCard, json.loads(js.read_text()), where=str(js)))
    return cards
