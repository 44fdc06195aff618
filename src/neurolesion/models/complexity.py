"""Parameter count and floating-point operations per patch of a network.

Example:
    >>> from neurolesion.models.config import ModelConfig
    >>> stats = complexity(ModelConfig(channels=(4, 8), patch_size=(16, 16, 16)))
    >>> stats["parameters"] > 0 and stats["gflops_per_patch"] > 0
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network


def count_parameters(net: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def flops_per_patch(net: torch.nn.Module, in_channels: int, patch_size: tuple[int, int, int]) -> int:
    """Forward-pass floating-point operations (multiply and add counted separately) for one patch.

    Args:
        net: the network (put in eval mode for the count).
        in_channels: input channels.
        patch_size: spatial patch size.

    Returns:
        FLOPs counted by ``torch.utils.flop_counter`` (convolutions and matrix products).
    """
    was_training = net.training
    net.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net(torch.zeros(1, in_channels, *patch_size))
    net.train(was_training)
    return int(counter.get_total_flops())


def complexity(cfg: ModelConfig) -> dict[str, Any]:
    """Parameters and GFLOPs per patch of the network a configuration builds.

    Args:
        cfg: model configuration.

    Returns:
        ``{"arch", "parameters", "patch_size", "gflops_per_patch"}``.
    """
    net = build_network(cfg)
    return {
        "arch": cfg.arch,
        "parameters": count_parameters(net),
        "patch_size": "x".join(map(str, cfg.patch_size)),
        "gflops_per_patch": round(flops_per_patch(net, cfg.in_channels, cfg.patch_size) / 1e9, 3),
    }


def describe(source: str | None = None) -> dict[str, dict[str, Any]]:
    """Complexity of a model file, shipped model or training config, or of every architecture's default.

    Args:
        source: a ``.yaml`` training config, a model name/file/folder; None for the default configuration
            of each architecture (4 CSVD outputs for the multi-output U-Net).

    Returns:
        ``{label: complexity(...)}``.

    Raises:
        InputError: an unreadable config or model.
    """
    from neurolesion.models.card import load_model
    from neurolesion.models.config import ARCHS

    if source is None:
        csvd = ["wmh", "cmb", "lacune", "epvs"]
        cfgs = {
            a: ModelConfig.from_mapping({"arch": a, "outputs": csvd if a == "multiunet" else ["wmh"]})
            for a in ARCHS
        }
    elif str(source).endswith((".yaml", ".yml")):
        from neurolesion.train.config import load_config

        cfgs = {str(source): load_config(source).model}
    else:
        cfgs = {str(source): load_model(source).config}
    return {name: complexity(cfg) for name, cfg in cfgs.items()}
