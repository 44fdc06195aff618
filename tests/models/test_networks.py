"""Every architecture builds from its config, keeps the patch shape and reports its complexity."""

from __future__ import annotations

import pytest
import torch

from neurolesion.errors import InputError
from neurolesion.models.complexity import complexity, count_parameters
from neurolesion.models.config import ARCHS, ModelConfig
from neurolesion.models.networks import BATCH_NORM_MOMENTUM, SCSE, build_network


def tiny(arch: str, **kw: object) -> ModelConfig:
    base: dict[str, object] = {
        "arch": arch,
        "inputs": ("flair", "t1"),
        "outputs": ("wmh", "cmb"),
        "channels": (4, 8, 8) if arch != "deepmedic" else (4, 6),
        "patch_size": (12, 12, 12),
        "context_factor": 3,
    }
    base.update(kw)
    return ModelConfig.from_mapping(base)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shape_and_backward(arch: str) -> None:
    cfg = tiny(arch)
    net = build_network(cfg)
    x = torch.randn(2, 2, 12, 12, 12)
    y = net(x)
    assert y.shape == (2, 2, 12, 12, 12)
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ARCHS)
def test_complexity_is_reported(arch: str) -> None:
    stats = complexity(tiny(arch))
    assert stats["arch"] == arch
    assert stats["parameters"] > 100
    assert stats["gflops_per_patch"] > 0


def test_default_unet_is_small() -> None:
    assert 0.3e6 < count_parameters(build_network(ModelConfig())) < 2e6


def test_multiunet_has_one_decoder_per_output_each_with_scse() -> None:
    net = build_network(tiny("multiunet", outputs=("wmh", "cmb", "lacune", "epvs")))
    decoders = list(net.decoders)  # type: ignore[arg-type]
    assert len(decoders) == 4
    assert all(any(isinstance(m, SCSE) for m in d.modules()) for d in decoders)
    # decoders are independent: one task's head does not change another task's output
    x = torch.randn(1, 2, 12, 12, 12)
    before = net(x).detach()
    with torch.no_grad():
        decoders[0].head.weight.add_(1.0)
    after = net(x).detach()
    assert not torch.allclose(before[:, 0], after[:, 0])
    assert torch.allclose(before[:, 1:], after[:, 1:])


def test_config_rejects_bad_values_with_clear_errors() -> None:
    with pytest.raises(InputError, match="patch_size"):
        ModelConfig.from_mapping({"arch": "unet", "channels": [4, 8, 16], "patch_size": [10, 12, 12]})
    with pytest.raises(InputError, match="unknown setting"):
        ModelConfig.from_mapping({"arhc": "unet"})
    with pytest.raises(InputError, match="arch"):
        ModelConfig.from_mapping({"arch": "resnet"})
    with pytest.raises(InputError, match="not a known sequence"):
        ModelConfig.from_mapping({"inputs": ["dwi"]})


def test_batch_norm_makes_the_answer_depend_on_the_input_units_not_on_the_window() -> None:
    """Instance norm rescales each window by its own statistics, so a window's answer cannot depend on its
    intensity scale; batch norm at inference applies statistics fixed in training."""
    x = torch.randn(2, 2, 12, 12, 12)
    instance = build_network(tiny("unet", res_units=0)).eval()
    assert torch.allclose(instance(3.0 * x), instance(x), atol=1e-4)
    batch = build_network(tiny("unet", res_units=0, norm="batch"))
    norms = [m for m in batch.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert norms and all(m.momentum == BATCH_NORM_MOMENTUM for m in norms)
    batch.train()(x)
    batch.eval()
    assert not torch.allclose(batch(3.0 * x), batch(x), atol=1e-2)
    assert torch.allclose(batch(x[:1]), batch(x)[:1], atol=1e-5)  # other windows in the batch change nothing
