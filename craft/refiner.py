"""CRAFT's LinkRefiner in plain torch, with the state-dict names of ``craft_refiner_CTW1500.pth``.

It turns CRAFT's character-level link map into a line-level one (CTW1500 was labelled by line),
which is why the product's default regions are text lines.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RefineNet"]


def _aspp(dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(64, 128, kernel_size=3, dilation=dilation, padding=dilation),
        nn.BatchNorm2d(128),
        nn.ReLU(inplace=True),
        nn.Conv2d(128, 128, kernel_size=1),
        nn.BatchNorm2d(128),
        nn.ReLU(inplace=True),
        nn.Conv2d(128, 1, kernel_size=1),
    )


class RefineNet(nn.Module):
    """LinkRefiner: four dilated (ASPP) heads over CRAFT's maps and ``upconv4`` feature."""

    def __init__(self) -> None:
        super().__init__()
        self.last_conv = nn.Sequential(
            nn.Conv2d(34, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.aspp1 = _aspp(6)
        self.aspp2 = _aspp(12)
        self.aspp3 = _aspp(18)
        self.aspp4 = _aspp(24)

    def forward(self, y: torch.Tensor, upconv4: torch.Tensor) -> torch.Tensor:
        """Return the refined link map ``[N, H, W, 1]`` from ``y`` ``[N, H, W, 2]``."""
        refine = self.last_conv(torch.cat([y.permute(0, 3, 1, 2), upconv4], dim=1))
        out = self.aspp1(refine) + self.aspp2(refine) + self.aspp3(refine) + self.aspp4(refine)
        return out.permute(0, 2, 3, 1)
