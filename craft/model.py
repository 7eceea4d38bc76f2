"""CRAFT (VGG16-BN U-Net) in plain torch, with state-dict names of the published weights.

torchvision is deliberately not used: the backbone is rebuilt here so that the keys
``basenet.slice1.0.weight`` ... ``conv_cls.8.bias`` of ``craft_mlt_25k.pth`` load with
``strict=True`` and the package has no torchvision dependency (which breaks beside CPU wheels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CRAFT", "VGG16BNBackbone", "fold_batch_norms"]

# torchvision's vgg16_bn "D" configuration; "M" is a 2x2 max-pool.
_VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
# CRAFT cuts torchvision's `features` at these indices (end-exclusive) into slices 1-4.
_SLICE_BOUNDS = ((0, 12), (12, 19), (19, 29), (29, 39))


def _vgg16_bn_features() -> list[nn.Module]:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out_ch = int(v)
            layers += [
                nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]
            in_ch = out_ch
    return layers


class VGG16BNBackbone(nn.Module):
    """VGG16-BN feature extractor returning the five skip tensors CRAFT consumes.

    Each slice keeps torchvision's layer indices as module names, which is what makes the
    published state dict load unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        features = _vgg16_bn_features()
        slices = []
        for start, end in _SLICE_BOUNDS:
            s = nn.Sequential()
            for i in range(start, end):
                s.add_module(str(i), features[i])
            slices.append(s)
        self.slice1, self.slice2, self.slice3, self.slice4 = slices
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, kernel_size=1),
        )

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        h2 = self.slice1(x)
        h3 = self.slice2(h2)
        h4 = self.slice3(h3)
        h5 = self.slice4(h4)
        fc7 = self.slice5(h5)
        return fc7, h5, h4, h3, h2


class _DoubleConv(nn.Module):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, kernel_size=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CRAFT(nn.Module):
    """Character Region Awareness For Text detection (Baek et al., CVPR 2019).

    ``forward`` returns the maps channels-last as the reference does, ``[N, H/2, W/2, 2]``
    (text, link), plus the ``upconv4`` feature ``[N, 32, H/2, W/2]`` the LinkRefiner needs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.basenet = VGG16BNBackbone()
        self.upconv1 = _DoubleConv(1024, 512, 256)
        self.upconv2 = _DoubleConv(512, 256, 128)
        self.upconv3 = _DoubleConv(256, 128, 64)
        self.upconv4 = _DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 2, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fc7, h5, h4, h3, h2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, h5], dim=1))
        y = F.interpolate(y, size=h4.shape[2:], mode="bilinear", align_corners=False)
        y = self.upconv2(torch.cat([y, h4], dim=1))
        y = F.interpolate(y, size=h3.shape[2:], mode="bilinear", align_corners=False)
        y = self.upconv3(torch.cat([y, h3], dim=1))
        y = F.interpolate(y, size=h2.shape[2:], mode="bilinear", align_corners=False)
        feature = self.upconv4(torch.cat([y, h2], dim=1))
        out = self.conv_cls(feature)
        return out.permute(0, 2, 3, 1), feature


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that follows a convolution into it, in place (eval only).

    The same function up to rounding, one pass over each activation fewer: worth it for the
    low-precision paths (a tenth of a bf16 forward on CPU was BatchNorm), never for fp32,
    whose maps must stay the reference's to the last bit that parity checks.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                seq[i + 1] = nn.Identity()
    return module
