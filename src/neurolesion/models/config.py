"""Network configuration: a frozen dataclass, validated on construction, loadable from a mapping (YAML).

Example:
    >>> cfg = ModelConfig(arch="unet", inputs=("flair",), outputs=("wmh",))
    >>> cfg.in_channels, cfg.out_channels, cfg.patch_size
    (1, 1, (96, 96, 96))
    >>> ModelConfig.from_mapping({"arch": "vnet", "channels": [8, 16, 32]}).channels
    (8, 16, 32)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

from neurolesion.errors import InputError
from neurolesion.registry import SEQUENCES, TASKS

Arch = Literal["unet", "vnet", "deepmedic", "multiunet"]
ARCHS: tuple[str, ...] = get_args(Arch)

T = TypeVar("T")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type (lists to tuples, ints to floats), checking Literals."""
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            raise InputError(f"{where}: {value!r} is not one of {', '.join(map(str, get_args(hint)))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: {value!r} is not a list")
        args = get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is None and len(args) != len(value):
            raise InputError(f"{where}: {value!r} must have {len(args)} items")
        return tuple(
            _coerce(v, item if item is not None else args[i], f"{where}[{i}]") for i, v in enumerate(value)
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: {value!r} is not a mapping")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _coerce(value, inner[0], where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return from_mapping(hint, value, where)
    name = getattr(hint, "__name__", str(hint))
    raise InputError(f"{where}: {value!r} is not a valid {name}")


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build a (nested) frozen config dataclass from a plain mapping, rejecting unknown keys.

    Args:
        cls: the dataclass type.
        data: keys are field names; lists become tuples, nested mappings nested dataclasses.
        where: prefix for error messages (file name and section).

    Returns:
        The validated instance.

    Raises:
        InputError: unknown key, wrong type or a value the dataclass rejects.

    Example:
        >>> from_mapping(ModelConfig, {"arch": "unet"}).arch
        'unet'
    """
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; expected {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None


def to_mapping(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain dicts and lists (YAML/JSON/checkpoint friendly)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a network, and what its inputs mean.

    Attributes:
        arch: ``unet`` (MONAI residual U-Net), ``vnet``, ``deepmedic`` (two pathways) or ``multiunet``
            (shared encoder, one scSE decoder per output).
        inputs: input sequences, in channel order (registry names).
        outputs: output tasks, one sigmoid channel each (registry names).
        channels: feature widths per level (U-Net, V-Net, multi-output U-Net) or per pathway layer
            (DeepMedic).
        res_units: residual units per level (U-Net family; 0 = plain convolutions).
        kernel_size: convolution kernel (V-Net uses 5 in the paper, 3 here by default for speed).
        norm: normalisation layer.
        dropout: dropout probability inside the network.
        context_factor: DeepMedic context pathway down-sampling factor.
        patch_size: training patch and inference window, voxels.
        spacing: voxel size the network expects, mm.
        normalisation: name of the intensity normalisation applied by the caller
            (see `neurolesion.preprocess.normalize.NORMALISATIONS`).
        any_input: one input channel that takes any single one of ``inputs`` (a contrast-agnostic
            network, e.g. brain extraction); otherwise one channel per input sequence.

    Raises:
        ValueError: inconsistent values (wrapped into InputError by `from_mapping`).
    """

    arch: Arch = "unet"
    inputs: tuple[str, ...] = ("flair",)
    outputs: tuple[str, ...] = ("wmh",)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    res_units: int = 1
    kernel_size: int = 3
    norm: Literal["instance", "batch"] = "instance"
    dropout: float = 0.0
    context_factor: int = 3
    patch_size: tuple[int, int, int] = (96, 96, 96)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    normalisation: str = "zscore-brain"
    any_input: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        for s in self.inputs:
            if s not in SEQUENCES:
                raise ValueError(f"input {s!r} is not a known sequence ({', '.join(SEQUENCES)})")
        for t in self.outputs:
            if t not in TASKS:
                raise ValueError(f"output {t!r} is not a known task ({', '.join(TASKS)})")
        if not self.inputs or not self.outputs:
            raise ValueError("inputs and outputs must each name at least one entry")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise ValueError(f"channels {self.channels} must list at least two positive widths")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size {self.kernel_size} must be odd")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout {self.dropout} must be in [0, 1)")
        if self.res_units < 0 or self.context_factor < 2:
            raise ValueError("res_units must be >= 0 and context_factor >= 2")
        if min(self.spacing) <= 0:
            raise ValueError(f"spacing {self.spacing} must be positive")
        m = self.size_multiple
        if any(p % m or p <= 0 for p in self.patch_size):
            raise ValueError(
                f"patch_size {self.patch_size} must be positive multiples of {m} for {self.arch}"
            )

    @property
    def in_channels(self) -> int:
        """Number of input channels (1 for an `any_input` network)."""
        return 1 if self.any_input else len(self.inputs)

    @property
    def out_channels(self) -> int:
        """Number of output channels (one per task)."""
        return len(self.outputs)

    @property
    def size_multiple(self) -> int:
        """Every patch side must be a multiple of this (total down-sampling of the network)."""
        if self.arch == "deepmedic":
            return self.context_factor
        return int(2 ** (len(self.channels) - 1))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "model") -> ModelConfig:
        """Build from a YAML mapping; see `from_mapping`."""
        return from_mapping(cls, data, where)
