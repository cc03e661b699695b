"""Training losses (spec §3.4): CIoU / GIoU + L1 on the box, BCE on the score.

Boxes are (N, 4) tensors. ``ciou_loss`` reproduces the official ``lib/utils/box_ops.ciou_loss``
(aspect term only when IoU > 0.5, alpha without gradient, CIoU clamped to [-1, 1]) with one
difference: denominators that are (almost) zero are replaced by a tiny epsilon, so degenerate
boxes (zero width/height, identical boxes, inverted predictions) give finite values and
gradients instead of NaN. For well-formed boxes the values are the official ones.

The geometry module is numpy; these few box ops are torch so that they are differentiable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-7


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def _safe(den: Tensor, eps: float = EPS) -> Tensor:
    """``den`` where |den| >= eps, else eps (no gradient flows through the replaced entries)."""
    return torch.where(den.abs() < eps, torch.full_like(den, eps), den)


def _weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    while weight.dim() < values.dim():
        weight = weight.unsqueeze(-1)
    weight = weight.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def box_iou(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise IoU of paired xyxy boxes (N, 4) -> (iou (N,), union (N,)).

    An inverted prediction (x2 < x1 or y2 < y1; the official GIoU asserts on it) counts as an
    empty box, so GIoU stays in [-1, 1] instead of exploding through a negative area."""
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    lt = torch.max(pred[:, :2], gt[:, :2])
    rb = torch.min(pred[:, 2:], gt[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_p + area_g - inter
    return inter / _safe(union), union


def generalized_iou(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """Paired GIoU (N,) and IoU (N,) of xyxy boxes (official ``generalized_box_iou`` minus its asserts)."""
    iou, union = box_iou(pred, gt)
    lt = torch.min(pred[:, :2], gt[:, :2])
    rb = torch.max(pred[:, 2:], gt[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, 0] * wh[:, 1]
    return iou - (area - union) / _safe(area), iou


def complete_iou(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """Paired CIoU (N,), clamped to [-1, 1], and IoU (N,) of xyxy boxes, as the official ``ciou_loss``."""
    w1, h1 = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1]
    w2, h2 = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    cx1, cy1 = (pred[:, 0] + pred[:, 2]) / 2, (pred[:, 1] + pred[:, 3]) / 2
    cx2, cy2 = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2

    inter_w = (torch.min(cx1 + w1 / 2, cx2 + w2 / 2) - torch.max(cx1 - w1 / 2, cx2 - w2 / 2)).clamp(min=0)
    inter_h = (torch.min(cy1 + h1 / 2, cy2 + h2 / 2) - torch.max(cy1 - h1 / 2, cy2 - h2 / 2)).clamp(min=0)
    inter = inter_w * inter_h
    c_w = (torch.max(cx1 + w1 / 2, cx2 + w2 / 2) - torch.min(cx1 - w1 / 2, cx2 - w2 / 2)).clamp(min=0)
    c_h = (torch.max(cy1 + h1 / 2, cy2 + h2 / 2) - torch.min(cy1 - h1 / 2, cy2 - h2 / 2)).clamp(min=0)

    union = w1 * h1 + w2 * h2 - inter
    iou = inter / _safe(union)
    u = ((cx2 - cx1) ** 2 + (cy2 - cy1) ** 2) / _safe(c_w**2 + c_h**2)
    v = (4 / math.pi**2) * torch.pow(torch.atan(w2 / _safe(h2)) - torch.atan(w1 / _safe(h1)), 2)
    with torch.no_grad():
        s = (iou > 0.5).to(v.dtype)
        alpha = s * v / (1 - iou + v).clamp_min(EPS)  # identical boxes: 0/0 in the official code
    ciou = torch.clamp(iou - u - alpha * v, min=-1.0, max=1.0)
    return ciou, iou


def giou_loss(pred_xyxy: Tensor, gt_xyxy: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """mean(1 - GIoU) and the per-box IoU (N,). ``weight`` (N,) makes it a weighted mean."""
    giou, iou = generalized_iou(pred_xyxy, gt_xyxy)
    return _weighted_mean(1 - giou, weight), iou


def ciou_loss(pred_xyxy: Tensor, gt_xyxy: Tensor, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """mean(1 - CIoU) and the per-box IoU (N,), as the official ``ciou_loss(pred, gt)``."""
    ciou, iou = complete_iou(pred_xyxy, gt_xyxy)
    return _weighted_mean(1 - ciou, weight), iou


def l1_loss(pred_xyxy: Tensor, gt_xyxy: Tensor, weight: Tensor | None = None) -> Tensor:
    """``F.l1_loss`` (mean over all N x 4 elements); with ``weight`` (N,) the mean over weighted boxes."""
    if weight is None:
        return F.l1_loss(pred_xyxy, gt_xyxy)
    return _weighted_mean((pred_xyxy - gt_xyxy).abs(), weight)


IOU_LOSSES = {"ciou": ciou_loss, "giou": giou_loss}


def box_losses(
    pred_boxes: Tensor,
    gt_xywh: Tensor,
    iou_type: str = "ciou",
    iou_weight: float = 2.0,
    l1_weight: float = 5.0,
    weight: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Box supervision of the official actors.

    ``pred_boxes`` (B, 1, 4) or (B, 4) normalised cxcywh (not clamped); ``gt_xywh`` (B, 4)
    normalised xywh in the search crop, converted to xyxy and clamped to [0, 1].
    ``weight`` (B,) selects/weights the boxes (e.g. positives only); an all-zero weight gives 0.
    Returns ``iou_weight * iou_loss + l1_weight * l1`` and the detached parts
    ``loss_iou``, ``loss_l1`` and ``iou`` (mean IoU of the weighted boxes).
    """
    if iou_type not in IOU_LOSSES:
        raise ValueError(f"iou_type must be one of {sorted(IOU_LOSSES)} (got {iou_type!r})")
    pred = cxcywh_to_xyxy(pred_boxes.float()).reshape(-1, 4)
    gt = xywh_to_xyxy(gt_xywh.float()).reshape(-1, 4).clamp(min=0.0, max=1.0)
    if pred.shape != gt.shape:
        raise ValueError(f"{pred.shape[0]} predicted boxes for {gt.shape[0]} ground-truth boxes")
    loss_iou, iou = IOU_LOSSES[iou_type](pred, gt, weight)
    loss_l1 = l1_loss(pred, gt, weight)
    total = iou_weight * loss_iou + l1_weight * loss_l1
    parts = {
        "loss_iou": loss_iou.detach(),
        "loss_l1": loss_l1.detach(),
        "iou": _weighted_mean(iou.detach(), weight),
    }
    return total, parts


def score_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``BCEWithLogits(pred_scores, label)`` over the flattened batch (official stage 3)."""
    return F.binary_cross_entropy_with_logits(logits.float().flatten(), labels.float().flatten())


def distribution_kl(student_logits: dict[str, Tensor], teacher_probs: dict[str, Tensor]) -> Tensor:
    """Dense-to-sparse / logits distillation: mean over the box edges of KL(teacher || student).

    ``student_logits[e]`` are (B, bins) logits, ``teacher_probs[e]`` (B, bins) probabilities, for
    e in l, t, r, b; KLDivLoss(reduction='batchmean'), no temperature (official actors).
    """
    terms = [
        F.kl_div(F.log_softmax(student_logits[e], dim=-1), teacher_probs[e], reduction="batchmean")
        for e in ("l", "t", "r", "b")
    ]
    return torch.stack(terms).mean()


def feature_mimic_loss(student_feats: list[Tensor], teacher_feats: list[Tensor],
                       student_layers: list[int], teacher_layers: list[int]) -> Tensor:
    """Deep-to-shallow feature mimicking: one MSE over the stacked (B, N, C) outputs of matched
    blocks (official stage-2 actor; teacher features carry no gradient)."""
    if len(student_layers) != len(teacher_layers):
        raise ValueError(f"{len(student_layers)} student layers vs {len(teacher_layers)} teacher layers")
    s = torch.stack([student_feats[i] for i in student_layers])
    t = torch.stack([teacher_feats[i] for i in teacher_layers]).detach()
    return F.mse_loss(s, t)


def edge_distribution_loss(logits: dict[str, Tensor], gt_xywh: Tensor, weight: Tensor | None = None) -> Tensor:
    """Direct supervision of the four bin distributions (distribution focal loss, GFL-style).

    Each GT edge, in bin units (bin k sits at k / bins of the crop), is split between its two
    neighbouring bins by linear interpolation; the loss is the cross-entropy to that two-bin
    target, averaged over edges. Not an official loss: it speeds up training from scratch.
    """
    gt = xywh_to_xyxy(gt_xywh.float()).reshape(-1, 4).clamp(0.0, 1.0)
    edges = {"l": gt[:, 0], "t": gt[:, 1], "r": gt[:, 2], "b": gt[:, 3]}
    terms = []
    for e, value in edges.items():
        z = logits[e].float()
        bins = z.shape[-1]
        pos = (value * bins).clamp(0.0, bins - 1 - 1e-4)
        lo = pos.floor().long()
        w_hi = pos - lo.float()
        logp = F.log_softmax(z, dim=-1)
        nll = -(1 - w_hi) * logp.gather(1, lo[:, None])[:, 0] - w_hi * logp.gather(1, (lo + 1)[:, None])[:, 0]
        terms.append(nll)
    per_box = torch.stack(terms).mean(0)
    return _weighted_mean(per_box, weight)


def center_loss(logits: Tensor, gt_xywh: Tensor, sigma: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """Dense supervision of the search tokens: which token holds the target's centre.

    ``logits`` (B, S*S): one logit per search token (row-major patch grid). The target is a
    Gaussian of ``sigma`` tokens around the GT centre, normalised over the grid; the loss is the
    cross-entropy of the softmax over all tokens to it. Not an official loss: trained from
    scratch, a small student learns to localise much sooner with it (training-only head, see
    ``TrainConfig.center_weight``).
    """
    target = _centre_target(gt_xywh, _token_grid_side(logits.shape[-1]), sigma, logits.device)
    per_box = -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1)
    return _weighted_mean(per_box, weight)


def center_edge_loss(edges: Tensor, gt_xywh: Tensor, sigma: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """Dense supervision of the search tokens' box: each token's distances to the four GT edges.

    ``edges`` (B, S*S, 4): the predicted distances (left, top, right, bottom, in crop units) from
    each token's centre to the GT box's edges (FCOS-style). L1 to the true distances, weighted by
    :func:`center_loss`'s Gaussian target, so the tokens near the centre learn the target's extent.
    Not an official loss (``TrainConfig.center_edge_weight``).
    """
    side = _token_grid_side(edges.shape[1])
    gt = gt_xywh.float().reshape(-1, 4)
    target = _centre_target(gt, side, sigma, edges.device)  # (B, S*S)
    grid = (torch.arange(side, device=edges.device, dtype=torch.float32) + 0.5) / side
    tx, ty = grid.repeat(side), grid.repeat_interleave(side)  # token centres, row-major
    x1, y1, x2, y2 = xywh_to_xyxy(gt)[:, :, None].unbind(1)  # each (B, 1)
    true = torch.stack([tx - x1, ty - y1, x2 - tx, y2 - ty], dim=-1)  # (B, S*S, 4)
    per_box = (target[..., None] * (edges.float() - true).abs()).sum((1, 2))
    return _weighted_mean(per_box, weight)


def _token_grid_side(tokens: int) -> int:
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"the centre losses need a square token grid (got {tokens} tokens)")
    return side


def _centre_target(gt_xywh: Tensor, side: int, sigma: float, device) -> Tensor:
    """(B, side*side): a Gaussian of ``sigma`` tokens around each GT centre, summing to 1."""
    gt = gt_xywh.float().reshape(-1, 4)
    centre = (gt[:, :2] + gt[:, 2:] / 2).clamp(0.0, 1.0) * side  # (B, 2) x, y in token units
    grid = torch.arange(side, device=device, dtype=torch.float32) + 0.5
    gx = torch.exp(-((grid - centre[:, :1]) ** 2) / (2 * sigma**2))  # (B, side)
    gy = torch.exp(-((grid - centre[:, 1:]) ** 2) / (2 * sigma**2))
    target = (gy[:, :, None] * gx[:, None, :]).reshape(len(gt), -1)
    return target / target.sum(-1, keepdim=True).clamp_min(1e-12)
