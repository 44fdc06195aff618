"""The networks: 3D U-Net, V-Net, DeepMedic-style two-pathway network and the multi-output scSE U-Net.

Every network maps (B, C_in, X, Y, Z) to (B, C_out, X, Y, Z) logits (one sigmoid channel per task), is
built from a `ModelConfig` by `build_network`, and uses MONAI blocks (`Convolution`, `ResidualUnit`,
`ChannelSELayer`, `UNet`).

Example:
    >>> import torch
    >>> from neurolesion.models.config import ModelConfig
    >>> net = build_network(ModelConfig(arch="unet", channels=(4, 8), patch_size=(16, 16, 16)))
    >>> net(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 1, 16, 16, 16])
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from monai.networks.blocks import ChannelSELayer, Convolution, ResidualUnit
from monai.networks.nets import UNet
from torch import nn

from neurolesion.models.config import ModelConfig

#: Batch-norm running statistics average about the last 100 training batches (PyTorch's default 0.1 keeps
#: about 10): with two patches a batch, the statistics used at inference should not be those of the last few.
BATCH_NORM_MOMENTUM = 0.01


def _norm(cfg: ModelConfig) -> str | tuple[str, dict[str, float]]:
    """MONAI's norm argument for the configured layer."""
    return ("batch", {"momentum": BATCH_NORM_MOMENTUM}) if cfg.norm == "batch" else cfg.norm


def _conv(cfg: ModelConfig, cin: int, cout: int, stride: int = 1, kernel: int | None = None) -> nn.Module:
    """Convolution + norm + PReLU (+ dropout) as configured."""
    return Convolution(
        3,
        cin,
        cout,
        strides=stride,
        kernel_size=kernel or cfg.kernel_size,
        norm=_norm(cfg),
        dropout=cfg.dropout or None,
        padding=0 if kernel == 2 else None,
    )


def _up(cfg: ModelConfig, cin: int, cout: int) -> nn.Module:
    """Transposed 2x2x2 convolution doubling the spatial size, + norm + PReLU."""
    return Convolution(
        3,
        cin,
        cout,
        strides=2,
        kernel_size=2,
        is_transposed=True,
        norm=_norm(cfg),
        padding=0,
        output_padding=0,
    )


def _block(cfg: ModelConfig, cin: int, cout: int, stride: int = 1) -> nn.Module:
    """A residual unit when ``res_units`` > 0, otherwise a plain convolution."""
    if cfg.res_units > 0:
        return ResidualUnit(
            3,
            cin,
            cout,
            strides=stride,
            kernel_size=cfg.kernel_size,
            subunits=cfg.res_units + 1,
            norm=_norm(cfg),
            dropout=cfg.dropout or None,
        )
    return _conv(cfg, cin, cout, stride)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation (Roy et al. 2018), max-combined.

    Args:
        channels: feature channels.
        reduction: channel squeeze ratio.
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.cse = ChannelSELayer(3, channels, r=reduction)
        self.sse = nn.Sequential(nn.Conv3d(channels, 1, kernel_size=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Recalibrate ``x`` along channels and along space; keep the stronger response."""
        return torch.maximum(self.cse(x), x * self.sse(x))


class VNet(nn.Module):
    """V-Net (Milletari et al. 2016) with configurable widths: residual stages of 1, 2, 3, 3... convolutions,
    strided-convolution down-sampling, transposed-convolution up-sampling, PReLU, element-wise residuals.

    Args:
        cfg: model configuration (``channels`` are the stage widths).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels
        n_convs = [min(i + 1, 3) for i in range(len(ch))]
        self.stem = _conv(cfg, cfg.in_channels, ch[0])
        self.enc = nn.ModuleList(
            nn.Sequential(*[_conv(cfg, c, c) for _ in range(n - 1)]) for c, n in zip(ch, n_convs, strict=True)
        )
        self.down = nn.ModuleList(
            _conv(cfg, ch[i], ch[i + 1], stride=2, kernel=2) for i in range(len(ch) - 1)
        )
        self.up = nn.ModuleList(_up(cfg, ch[i + 1], ch[i]) for i in range(len(ch) - 1))
        self.dec = nn.ModuleList(
            nn.Sequential(
                _conv(cfg, 2 * ch[i], ch[i]), *[_conv(cfg, ch[i], ch[i]) for _ in range(n_convs[i] - 1)]
            )
            for i in range(len(ch) - 1)
        )
        self.head = nn.Conv3d(ch[0], cfg.out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, C_out, X, Y, Z)."""
        x = self.stem(x)
        skips = []
        for i, stage in enumerate(self.enc):
            x = x + stage(x)
            if i < len(self.down):
                skips.append(x)
                x = self.down[i](x)
        for i in reversed(range(len(self.dec))):
            up = self.up[i](x)
            x = up + self.dec[i](torch.cat([up, skips[i]], dim=1))
        return self.head(x)


class DeepMedic(nn.Module):
    """Two-pathway network (Kamnitsas et al. 2017): a normal-resolution pathway and a context pathway that
    sees the patch down-sampled by ``context_factor``; their features are merged before a 1x1x1 classifier.

    Args:
        cfg: model configuration (``channels`` are the pathway layer widths).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.factor = cfg.context_factor

        def pathway() -> nn.Sequential:
            widths = (cfg.in_channels, *cfg.channels)
            return nn.Sequential(*[_conv(cfg, a, b) for a, b in itertools.pairwise(widths)])

        self.normal = pathway()
        self.context = pathway()
        fc = 2 * cfg.channels[-1]
        self.classifier = nn.Sequential(
            _conv(cfg, fc, fc, kernel=1), _conv(cfg, fc, fc, kernel=1), nn.Conv3d(fc, cfg.out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, C_out, X, Y, Z)."""
        low = F.avg_pool3d(x, kernel_size=self.factor)
        ctx = F.interpolate(self.context(low), size=x.shape[2:], mode="trilinear", align_corners=False)
        return self.classifier(torch.cat([self.normal(x), ctx], dim=1))


class _Decoder(nn.Module):
    """One task's decoder: up-sample, concatenate the skip, convolve, scSE, per level; 1x1x1 head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels
        levels = range(len(ch) - 1)
        self.up = nn.ModuleList(_up(cfg, ch[i + 1], ch[i]) for i in levels)
        self.conv = nn.ModuleList(_block(cfg, 2 * ch[i], ch[i]) for i in levels)
        self.att = nn.ModuleList(SCSE(ch[i]) for i in levels)
        self.head = nn.Conv3d(ch[0], 1, kernel_size=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Logits (B, 1, X, Y, Z) from the encoder features, finest first."""
        y = feats[-1]
        for i in reversed(range(len(feats) - 1)):
            y = self.att[i](self.conv[i](torch.cat([self.up[i](y), feats[i]], dim=1)))
        return self.head(y)


class MultiOutputUNet(nn.Module):
    """One shared residual encoder, one decoder per output task, scSE attention in every decoder stage.

    Missing input sequences are zero channels; training with channel dropout
    (`AugmentConfig.channel_dropout`) makes the network robust to them.

    Args:
        cfg: model configuration (``channels`` are the level widths, ``outputs`` the decoders).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.enc = nn.ModuleList(
            [_block(cfg, cfg.in_channels, ch[0])]
            + [_block(cfg, ch[i], ch[i + 1], 2) for i in range(len(ch) - 1)]
        )
        self.decoders = nn.ModuleList(_Decoder(cfg) for _ in cfg.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_outputs, X, Y, Z)."""
        feats = []
        for stage in self.enc:
            x = stage(x)
            feats.append(x)
        return torch.cat([dec(feats) for dec in self.decoders], dim=1)


def build_network(cfg: ModelConfig) -> nn.Module:
    """Instantiate the network a configuration describes (weights randomly initialised).

    Args:
        cfg: model configuration.

    Returns:
        A ``torch.nn.Module`` mapping (B, in_channels, *patch) to (B, out_channels, *patch) logits.
    """
    if cfg.arch == "unet":
        return UNet(
            spatial_dims=3,
            in_channels=cfg.in_channels,
            out_channels=cfg.out_channels,
            channels=cfg.channels,
            strides=(2,) * (len(cfg.channels) - 1),
            kernel_size=cfg.kernel_size,
            up_kernel_size=cfg.kernel_size,
            num_res_units=cfg.res_units,
            norm=_norm(cfg),
            dropout=cfg.dropout,
        )
    if cfg.arch == "vnet":
        return VNet(cfg)
    if cfg.arch == "deepmedic":
        return DeepMedic(cfg)
    return MultiOutputUNet(cfg)
