"""The sub-pixel form of a stride-2 transposed convolution computes the same function, and only at inference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurolesion.infer.fastconv import SingleChannelConv3d, SubpixelConvTranspose3d, for_inference
from neurolesion.models.config import ModelConfig
from neurolesion.models.networks import build_network


@pytest.mark.parametrize(("cin", "cout", "bias"), [(8, 1, True), (5, 2, False), (3, 4, True)])
def test_subpixel_equals_transposed_convolution(cin: int, cout: int, bias: bool) -> None:
    torch.manual_seed(0)
    layer = nn.ConvTranspose3d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)
    x = torch.randn(2, cin, 5, 6, 7)
    with torch.no_grad():
        expected = layer(x)
        got = SubpixelConvTranspose3d(layer)(x)
    assert got.shape == expected.shape == (2, cout, 10, 12, 14)
    assert torch.allclose(got, expected, atol=1e-5)


def test_other_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="stride 2"):
        SubpixelConvTranspose3d(nn.ConvTranspose3d(4, 1, 2, stride=2))


@pytest.mark.parametrize("outputs", [("wmh",), ("lacune", "epvs")])
def test_inference_copy_of_a_unet(outputs: tuple[str, ...]) -> None:
    torch.manual_seed(1)
    cfg = ModelConfig(arch="unet", channels=(4, 8, 16), patch_size=(16, 16, 16), outputs=outputs)
    net = build_network(cfg).eval()
    keys = list(net.state_dict())
    fast = for_inference(net)
    assert fast is not net
    assert any(isinstance(m, SubpixelConvTranspose3d) for m in fast.modules())
    assert not any(isinstance(m, SubpixelConvTranspose3d) for m in net.modules())
    assert list(net.state_dict()) == keys  # the trained network and its checkpoints are untouched
    x = torch.randn(1, cfg.in_channels, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-4)


def test_network_without_swappable_layer_is_returned_as_is() -> None:
    net = nn.Sequential(nn.Conv3d(2, 2, 3, padding=1), nn.ConvTranspose3d(2, 8, 3, stride=2))
    assert for_inference(net) is net


@pytest.mark.parametrize(("stride", "padding", "bias"), [(1, 1, True), (2, 0, False)])
def test_single_channel_convolution_with_batch_as_groups(stride: int, padding: int, bias: bool) -> None:
    torch.manual_seed(2)
    layer = nn.Conv3d(1, 1, 3, stride=stride, padding=padding, bias=bias)
    x = torch.randn(3, 1, 9, 8, 7)
    with torch.no_grad():
        assert torch.allclose(SingleChannelConv3d(layer)(x), layer(x), atol=1e-5)
    with pytest.raises(ValueError, match="one-channel"):
        SingleChannelConv3d(nn.Conv3d(2, 1, 3))


def test_copy_follows_changed_weights() -> None:
    """A network trained between two calls (validation during training) is run with its new weights."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.ConvTranspose3d(4, 1, 3, stride=2, padding=1, output_padding=1))
    x = torch.randn(1, 4, 3, 3, 3)
    with torch.no_grad():
        first = for_inference(net)(x)
        net[0].weight.mul_(2.0)
        second = for_inference(net)(x)
        assert torch.allclose(second, net(x), atol=1e-5)
    assert not torch.allclose(first, second)
