"""Faster inference copies of trained networks: the same function, cheaper layers where the CPU needs them.

A U-Net's last up-sampling layer is a transposed convolution (kernel 3, stride 2) to one or two output
channels. On a CPU, PyTorch runs it on a slow generic path: about a fifth of a shipped model's time under
bfloat16. It equals an ordinary 2x2x2 convolution to 8 x C_out channels on the input padded by one voxel
at its far side, followed by a sub-pixel shuffle (MONAI's `pixelshuffle`: each of a channel's 8 sub-channels
fills one of the 8 output phases),
which oneDNN runs about 3.5x faster. The convolution after it, one channel to one, oneDNN runs about 2x
faster with the batch laid out as groups (`SingleChannelConv3d`). `for_inference` returns a copy of a
network with such layers swapped; the trained network, its ``state_dict`` and its checkpoints stay as they
are.

Example:
    >>> import torch
    >>> up = torch.nn.ConvTranspose3d(8, 1, 3, stride=2, padding=1, output_padding=1)
    >>> x = torch.randn(1, 8, 5, 6, 7)
    >>> bool(torch.allclose(SubpixelConvTranspose3d(up)(x), up(x), atol=1e-5))
    True
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from monai.networks.utils import pixelshuffle
from torch import nn

#: Transposed convolutions with at most this many output channels are swapped. Measured on the 2-core
#: AVX512-BF16 CPU, 32 input channels, two 32^3 inputs, bfloat16: 13.1 -> 5.5 ms for 1 output channel,
#: 11.1 -> 10.3 ms for 2, but 8.2 -> 10.8 ms for 4 and 9.3 -> 11.6 ms for 8.
MAX_OUT_CHANNELS = 2

# For one axis of a kernel-3, stride-2, padding-1 transposed convolution: output phase (even 0, odd 1) ->
# {input offset: kernel index}. Output 2m takes input m with kernel tap 1; output 2m+1 takes input m with
# tap 2 and input m+1 with tap 0.
_TAPS = {0: {0: 1}, 1: {0: 2, 1: 0}}


def _shape_ok(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.ConvTranspose3d)
        and module.kernel_size == (3, 3, 3)
        and module.stride == (2, 2, 2)
        and module.padding == (1, 1, 1)
        and module.output_padding == (1, 1, 1)
        and module.dilation == (1, 1, 1)
        and module.groups == 1
    )


def _swappable(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.ConvTranspose3d)
        and _shape_ok(module)
        and module.out_channels <= MAX_OUT_CHANNELS
    )


class SubpixelConvTranspose3d(nn.Module):
    """A kernel-3, stride-2 ``ConvTranspose3d`` (padding 1, output padding 1) as convolution + shuffle.

    Args:
        layer: the transposed convolution to reproduce; its weights are copied.

    Raises:
        ValueError: a layer of another shape (`MAX_OUT_CHANNELS` is not checked here).
    """

    def __init__(self, layer: nn.ConvTranspose3d) -> None:
        super().__init__()
        if not _shape_ok(layer):
            raise ValueError(f"{layer}: expected kernel 3, stride 2, padding 1, output padding 1, one group")
        w = layer.weight.detach()  # (C_in, C_out, 3, 3, 3)
        cin, cout = w.shape[:2]
        # (C_out, phase x, phase y, phase z, C_in, tap x, tap y, tap z): the channel order pixelshuffle reads
        phases = w.new_zeros(cout, 2, 2, 2, cin, 2, 2, 2)
        for p0, p1, p2 in ((a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)):
            for (d0, k0), (d1, k1), (d2, k2) in (
                (t0, t1, t2)
                for t0 in _TAPS[p0].items()
                for t1 in _TAPS[p1].items()
                for t2 in _TAPS[p2].items()
            ):
                phases[:, p0, p1, p2, :, d0, d1, d2] = w[:, :, k0, k1, k2].T
        self.out_channels = cout
        self.weight = nn.Parameter(phases.reshape(8 * cout, cin, 2, 2, 2), requires_grad=False)
        bias = layer.bias.detach() if layer.bias is not None else w.new_zeros(cout)
        self.bias = nn.Parameter(bias.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, X, Y, Z) -> (B, C_out, 2X, 2Y, 2Z), as the transposed convolution."""
        y = pixelshuffle(F.conv3d(F.pad(x, (0, 1, 0, 1, 0, 1)), self.weight), spatial_dims=3, scale_factor=2)
        return y + self.bias.view(1, self.out_channels, 1, 1, 1).to(y.dtype)


class SingleChannelConv3d(nn.Module):
    """A one-channel to one-channel ``Conv3d``, run with the batch as convolution groups.

    Args:
        layer: the convolution to reproduce (its weights are shared, not copied).

    Raises:
        ValueError: a layer with more than one input or output channel, or grouped.
    """

    def __init__(self, layer: nn.Conv3d) -> None:
        super().__init__()
        if not _single_channel(layer):
            raise ValueError(f"{layer}: expected a one-channel to one-channel convolution without groups")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, X, Y, Z) -> (B, 1, X', Y', Z'), as the convolution."""
        layer, b = self.layer, x.shape[0]
        bias = None if layer.bias is None else layer.bias.repeat(b)
        y = F.conv3d(
            x.reshape(1, b, *x.shape[2:]),
            layer.weight.repeat(b, 1, 1, 1, 1),
            bias,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=b,
        )
        return y.reshape(b, 1, *y.shape[2:])


def _single_channel(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv3d)
        and module.in_channels == module.out_channels == 1
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


def _fast(module: nn.Module) -> nn.Module | None:
    """The faster stand-in for one layer, or None."""
    if isinstance(module, nn.ConvTranspose3d) and _swappable(module):
        return SubpixelConvTranspose3d(module)
    if isinstance(module, nn.Conv3d) and _single_channel(module):
        return SingleChannelConv3d(module)
    return None


def _has_stand_in(module: nn.Module) -> bool:
    return _swappable(module) or _single_channel(module)


def for_inference(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` with its narrow (transposed) convolutions swapped.

    The copy is made anew on every call (a few milliseconds for the shipped networks), so a network whose
    weights change between calls, as in training with validation, is always run with its current weights.

    Args:
        net: a trained network (left unchanged).

    Returns:
        ``net`` itself when nothing is swappable, else a copy computing the same function.
    """
    if not any(_has_stand_in(m) for m in net.modules()):
        return net
    fast = copy.deepcopy(net).eval()
    for parent in list(fast.modules()):
        for name, child in list(parent.named_children()):
            stand_in = _fast(child)
            if stand_in is not None:
                setattr(parent, name, stand_in)
    return fast
