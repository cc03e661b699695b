"""Prediction heads on the four prediction tokens (left, right, top, bottom)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

HEAD_LN_EPS = 1e-5  # PyTorch default; the backbone uses 1e-6


class DistributionBoxHead(nn.Module):
    """One MLP shared by the four prediction tokens -> a distribution over bins per box edge.

    Official ``MlpHead`` (2 layers, norm=True): Linear-LN-ReLU-Linear-LN; the edge
    coordinate is the expectation of bin positions ``k * stride`` (no half-bin offset).
    """

    def __init__(self, dim: int, feat_sz: int, search_size: int) -> None:
        super().__init__()
        self.feat_sz = feat_sz
        self.stride = search_size / feat_sz  # Python float, as official
        self.img_sz = feat_sz * self.stride
        self.layers = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim, eps=HEAD_LN_EPS), nn.ReLU()),
                nn.Sequential(nn.Linear(dim, feat_sz), nn.LayerNorm(feat_sz, eps=HEAD_LN_EPS)),
            ]
        )
        # float32 bin positions; a buffer (not saved) so that .to(device) moves it.
        self.register_buffer("bin_coords", torch.arange(feat_sz) * self.stride, persistent=False)

    def logits(self, tokens: Tensor) -> Tensor:
        """(B, 4, C) prediction tokens -> (B, 4, feat_sz) bin logits (order l, r, t, b)."""
        for layer in self.layers:
            tokens = layer(tokens)
        return tokens

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (pred_boxes (B,1,4) normalised cxcywh, probs (B,4,bins), logits (B,4,bins))."""
        logits = self.logits(tokens)
        probs = logits.softmax(dim=-1)
        edges = (probs * self.bin_coords).sum(dim=-1)  # (B, 4): l, r, t, b in crop pixels
        l, r, t, b = (edges / self.img_sz).unbind(-1)
        boxes = torch.stack([(l + r) / 2, (t + b) / 2, r - l, b - t], dim=-1)
        return boxes.unsqueeze(1), probs, logits


class ScoreHead(nn.Module):
    """Confidence logit: Linear-ReLU-Linear on EACH prediction token, then the mean (official order)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(dim, dim), nn.ReLU()), nn.Linear(dim, 1)])

    def forward(self, tokens: Tensor) -> Tensor:
        x = tokens
        for layer in self.layers:
            x = layer(x)
        return x.mean(dim=1).flatten()  # (B,) logits
