"""The per-frame / per-chunk CNN of FE2E and MESM (the authors' VGG-style extractor).

``conv5x5(C->64) + BN + ReLU + 2x2 max-pool``, two low-level VGG blocks (64, 64), then three
*stages* of one VGG block and a 2x2 max-pool each (128, 256, 512): a 48x48 face ends at 512x3x3,
a 128x32 log-mel chunk at 512x8x2.  FE2E runs the stages densely.  MESM puts a selector (its
text-queried attention with nucleus selection) before each stage and runs the stage on the kept
sites only (:mod:`.sparse`); with every site kept both compute the same thing, which is why one
class serves both and the two models share parameter names.

Other sizes work: the flattened size is computed from the image shape (four 2x2 poolings with
floor, so at least 16x16); ``cnn_width`` scales every channel count (1.0 = the paper) so that tests and
CPU demos can run a narrow copy.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch
from torch import nn

from ...errors import SetupError
from ..batch import InputSpec
from .sparse import MaskedBatchNorm2d, Rulebook, Sites, SiteConv2d, masked_max_pool2d, resolve_impl

FACE_MEAN = (159.0, 111.0, 102.0)
FACE_STD = (37.0, 33.0, 32.0)
"""The authors' per-channel constants for RGB face crops in [0, 255], applied inside the model."""
STEM, LOW, STAGES = 64, (64, 64), (128, 256, 512)
MIN_SIZE = 16
"""Four 2x2 poolings (stem and three stages) need at least 16 pixels each way."""


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def stage_channels(width: float) -> list[tuple[int, int]]:
    """``(in, out)`` channels of the three stages at the channel multiplier ``width``."""
    widths = [scaled(c, width) for c in (LOW[-1], *STAGES)]
    return list(pairwise(widths))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x (N, C, H, W)`` copied into channels-last memory, with canonical strides even when C = 1.

    The CNNs run channels-last: oneDNN's CPU convolutions then skip their layout reorders, max-pooling
    is ~10x faster, and the gather path's ``(sites, C)`` matrix is a view (measured on CPU: FE2E's
    forward ~0.8x the time, same values).  A one-channel tensor is contiguous in both layouts, and
    ``Tensor.contiguous`` keeps its default strides, with which the first convolution would answer in
    the default layout; ``empty_like`` gives the strides PyTorch recognises as channels-last.
    """
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


class VGGBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU; at the active sites only when given them."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = SiteConv2d(in_channels, out_channels), MaskedBatchNorm2d(out_channels)
        self.conv2, self.bn2 = SiteConv2d(out_channels, out_channels), MaskedBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x, active), active))
        return torch.relu(self.bn2(self.conv2(x, active), active))

    def forward_sites(self, features: torch.Tensor, rules: Rulebook) -> torch.Tensor:
        """The gather path: ``(S, Cin)`` -> ``(S, Cout)`` at the rulebook's sites."""
        # ReLU in place: batch norm's backward needs its input, not its output.
        x = torch.relu_(self.bn1.forward_sites(self.conv1.forward_sites(features, rules)))
        return torch.relu_(self.bn2.forward_sites(self.conv2.forward_sites(x, rules)))


class Stage(nn.Module):
    """Optional selector, a VGG block on the selected sites, 2x2 max-pool of features and sites.

    A selector is called as ``select(features, active or None, query) -> (features, kept)`` and
    returns the features with exact zeros off the kept sites.
    """

    def __init__(self, in_channels: int, out_channels: int, select: nn.Module | None) -> None:
        super().__init__()
        self.select = select
        self.block = VGGBlock(in_channels, out_channels)

    def forward(self, x: torch.Tensor, active: torch.Tensor | None,
                query: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.select is not None:
            x, active = self.select(x, active, query)
        return masked_max_pool2d(self.block(x, active), active)

    def forward_sites(self, sites: Sites, query: torch.Tensor) -> Sites:
        """The gather path: select, one rulebook for the block's two convolutions, pool the sites."""
        sites = self.select.forward_sites(sites, query)
        return sites.with_features(self.block.forward_sites(sites.features, Rulebook(sites))).max_pool()


class ImageCNN(nn.Module):
    """One image per position in, one flat feature vector per image out: ``(N, C, H, W) -> (N, F)``."""

    def __init__(self, spec: InputSpec, cnn_width: float,
                 selector: Callable[[int], nn.Module] | None = None, sparse_impl: str = "auto",
                 keep: float = 1.0) -> None:
        """``selector(in_channels)`` builds the module put before each stage (None: dense stages);
        ``sparse_impl`` (``auto``, ``gather``, ``masked``: see :mod:`.sparse`) how stages with a
        selector compute at the kept sites only, ``keep`` the attention mass the selectors keep
        (MESM's p), by which ``auto`` chooses."""
        super().__init__()
        self.sparse_impl = sparse_impl
        self.keep = keep
        if len(spec.image_shape) != 3:
            raise SetupError(f"{spec.modality}: images need a (C, H, W) shape, got {spec.image_shape}")
        channels, height, width = spec.image_shape
        if min(height, width) < MIN_SIZE:
            raise SetupError(
                f"{spec.modality}: the CNN pools 2x2 four times, so images must be at least "
                f"{MIN_SIZE}x{MIN_SIZE}; got {height}x{width}"
            )
        self.face = spec.column == "face_crops"
        if self.face:
            if channels != 3:
                raise SetupError(f"{spec.modality}: face crops must be RGB (3 channels), got {channels}")
            self.register_buffer("mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(FACE_STD).view(1, 3, 1, 1), persistent=False)
        stem, low = scaled(STEM, cnn_width), [scaled(c, cnn_width) for c in LOW]
        self.stem = nn.Sequential(
            # Pooling before the ReLU: the same values and gradients (ReLU is monotone, so it commutes
            # with a max), on a quarter of the sites.  Parameter names are unchanged (stem.0, stem.1).
            nn.Conv2d(channels, stem, kernel_size=5, padding=2), nn.BatchNorm2d(stem), nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.low = nn.Sequential(VGGBlock(stem, low[0]), VGGBlock(low[0], low[1]))
        self.stages = nn.ModuleList(
            Stage(cin, cout, None if selector is None else selector(cin))
            for cin, cout in stage_channels(cnn_width)
        )
        self.out_features = stage_channels(cnn_width)[-1][1] * (height // MIN_SIZE) * (width // MIN_SIZE)

    def forward(self, images: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """``query (N, dq)``: what each image's selectors attend with (unused without selectors)."""
        x = (images - self.mean) / self.std if self.face else images
        x = self.low(self.stem(channels_last(x)))
        if self.stages[0].select is not None and resolve_impl(self.sparse_impl, x.device, self.keep) == "gather":
            sites = Sites.from_dense(x)
            for stage in self.stages:
                sites = stage.forward_sites(sites, query)
            return sites.to_dense().flatten(1)
        active = None
        for stage in self.stages:
            x, active = stage(x, active, query)
        return x.flatten(1)
