"""The poster's network as PyTorch modules (Roberts & Conselice; the authors' model file,
with its skip projection made to work), batch-norm folding for inference, and the
per-batch dihedral transform. Importing this module imports torch; the plugin imports it
only when a network is built, so listing plugins stays fast.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


class SpectralResidualBlock(nn.Module):
    """Two 1x1 convolutions (BN, ReLU between, spatial dropout) and an identity skip."""

    def __init__(self, c: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.drop = nn.Dropout2d(dropout)
        self.conv2 = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.drop(torch.relu(self.bn1(self.conv1(x))))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation from average- and max-pooled vectors, one shared MLP."""

    def __init__(self, c: int, reduction: int = 8) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(c, c // reduction), nn.ReLU(inplace=True), nn.Linear(c // reduction, c)
        )

    def forward(self, x):
        avg = self.mlp(x.mean(dim=(2, 3)))
        mx = self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


class SpatialResidualBlock(nn.Module):
    """Two 3x3 convolutions with BN and spatial dropout; a 1x1 conv + BN projection on
    the skip whenever the channel count changes."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.drop = nn.Dropout2d(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x):
        out = self.drop(torch.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.skip(x))


def _stem(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class PosterCNN(nn.Module):
    """Spectral trunk (1x1 convolutions: colours per pixel), channel attention, spatial
    trunk (3x3 residual blocks, three poolings), global average pool, dense head.

    ``n_tabular`` > 0 makes the hybrid variant (beyond the poster): that many catalog
    values (colours, magnitude) pass through a small dense layer and join the pooled
    image features before the head.
    """

    def __init__(
        self,
        in_bands: int = 7,
        width: int = 32,
        n_classes: int = 3,
        dropout: float = 0.1,
        n_tabular: int = 0,
    ) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_stem(in_bands, w),
            SpectralResidualBlock(w, dropout),
            SpectralResidualBlock(w, dropout),
            *_stem(w, 2 * w),
            SpectralResidualBlock(2 * w, dropout),
            SpectralResidualBlock(2 * w, dropout),
            ChannelAttention(2 * w, 8),
            SpatialResidualBlock(2 * w, 2 * w, dropout),
            nn.MaxPool2d(2),
            SpatialResidualBlock(2 * w, 4 * w, dropout),
            nn.MaxPool2d(2),
            SpatialResidualBlock(4 * w, 8 * w, dropout),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.n_tabular = n_tabular
        self.tabular = (
            nn.Sequential(nn.Linear(n_tabular, 4 * w), nn.BatchNorm1d(4 * w), nn.ReLU(inplace=True))
            if n_tabular
            else None
        )
        width_in = 8 * w + (4 * w if n_tabular else 0)
        self.head = nn.Sequential(
            nn.Linear(width_in, 16 * w),
            nn.BatchNorm1d(16 * w),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(16 * w, 8 * w),
            nn.BatchNorm1d(8 * w),
            nn.ReLU(inplace=True),
            nn.Dropout(0.15),
            nn.Linear(8 * w, n_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x, tabular=None):
        h = self.features(x)
        if self.tabular is not None:
            h = torch.cat([h, self.tabular(tabular)], dim=1)
        return self.head(h)


def build_network(
    in_bands: int = 7,
    width: int = 32,
    n_classes: int = 3,
    dropout: float = 0.1,
    n_tabular: int = 0,
) -> PosterCNN:
    """The poster's network; ``width`` scales every channel count (32 = as published)."""
    return PosterCNN(in_bands, width, n_classes, dropout, n_tabular)


def parameter_count(width: int = 32) -> int:
    return sum(p.numel() for p in build_network(7, width).parameters())


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """An inference copy with every Conv2d -> BatchNorm2d pair merged into one Conv2d.

    Exact in eval mode (same outputs up to float rounding); saves a pass over every
    activation map.
    """
    net = copy.deepcopy(net).eval()

    def fuse(conv, bn):
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=True,
        ).to(conv.weight.device)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.data = conv.weight.data * scale[:, None, None, None]
        bias = conv.bias.data if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.data = (bias - bn.running_mean) * scale + bn.bias
        return fused

    def walk(module):
        names = list(module._modules)
        for i, name in enumerate(names):
            child = module._modules[name]
            if isinstance(child, nn.Conv2d):
                # BN that directly follows in a Sequential
                if i + 1 < len(names) and isinstance(module._modules[names[i + 1]], nn.BatchNorm2d):
                    module._modules[name] = fuse(child, module._modules[names[i + 1]])
                    module._modules[names[i + 1]] = nn.Identity()
                # conv1/bn1, conv2/bn2 attribute pairs inside residual blocks
                bn_name = name.replace("conv", "bn")
                if bn_name != name and isinstance(module._modules.get(bn_name), nn.BatchNorm2d):
                    module._modules[name] = fuse(child, module._modules[bn_name])
                    module._modules[bn_name] = nn.Identity()
            elif child is not None:
                walk(child)

    with torch.no_grad():
        walk(net)
    return net


def prepare_inputs(cutouts: np.ndarray) -> torch.Tensor:
    """float32 NCHW tensor in channels-last memory; missing coverage (NaN) becomes 0."""
    x = torch.from_numpy(np.nan_to_num(cutouts, nan=0.0, posinf=0.0, neginf=0.0))
    return x.contiguous(memory_format=torch.channels_last)


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random dihedral transform per batch (cheap: a view, no per-sample Python)."""
    k = int(torch.randint(0, 8, (1,), generator=generator))
    return dihedral(x, k)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` in 0..7: k % 4 quarter turns, then a flip if k >= 4; in
    channels-last memory (the identity copies nothing when ``x`` already is)."""
    if k % 4:
        x = torch.rot90(x, k % 4, dims=(2, 3))
    if k >= 4:
        x = torch.flip(x, dims=(3,))
    return x.contiguous(memory_format=torch.channels_last)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 matrix work runs natively here: CUDA with bf16, or a CPU that reports
    AVX512-BF16 or AMX-BF16. Elsewhere autocast emulates it (measured 10x slower than fp32
    on an AVX2-only CPU), so ``precision='auto'`` keeps fp32 there."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & flags)
