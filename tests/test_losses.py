"""Training losses: GIoU / CIoU against hand-computed values, robustness, and a loss that learns."""

from __future__ import annotations

import math

import pytest
import torch

from mixformerv2 import ModelConfig, build_model
from mixformerv2.training.losses import (
    box_losses,
    center_edge_loss,
    center_loss,
    ciou_loss,
    complete_iou,
    cxcywh_to_xyxy,
    giou_loss,
    l1_loss,
    score_loss,
    xywh_to_xyxy,
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: avoid thread oversubscription under pytest-xdist
    yield
    torch.set_num_threads(before)


T = lambda *rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731


def test_box_conversions():
    assert torch.equal(cxcywh_to_xyxy(T([2, 3, 4, 2])), T([0, 2, 4, 4]))
    assert torch.equal(xywh_to_xyxy(T([1, 2, 3, 4])), T([1, 2, 4, 6]))
    assert cxcywh_to_xyxy(torch.zeros(5, 1, 4)).shape == (5, 1, 4)


def test_giou_and_ciou_hand_computed_low_overlap():
    # pred [0,0,2,2], gt [1,1,3,3]: inter 1, union 7, enclosing 3x3 = 9
    pred, gt = T([0, 0, 2, 2]), T([1, 1, 3, 3])
    loss, iou = giou_loss(pred, gt)
    assert iou.shape == (1,) and iou.item() == pytest.approx(1 / 7)
    assert loss.item() == pytest.approx(1 - (1 / 7 - 2 / 9))  # = 68/63
    # CIoU: IoU < 0.5 -> no aspect term; rho^2 = 1^2 + 1^2 = 2, c^2 = 3^2 + 3^2 = 18
    loss, iou = ciou_loss(pred, gt)
    assert loss.item() == pytest.approx(1 - (1 / 7 - 2 / 18))  # = 61/63
    assert iou.item() == pytest.approx(1 / 7)


def test_ciou_hand_computed_high_overlap_has_aspect_term():
    # pred [0,0,4,2] (w4 h2), gt [0,0,4,3] (w4 h3): inter 8, union 12 -> IoU 2/3 > 0.5
    pred, gt = T([0, 0, 4, 2]), T([0, 0, 4, 3])
    iou = 2 / 3
    u = 0.5**2 / (4**2 + 3**2)  # centres (2,1) vs (2,1.5); enclosing 4x3
    v = 4 / math.pi**2 * (math.atan(4 / 3) - math.atan(4 / 2)) ** 2
    alpha = v / (1 - iou + v)
    loss, got_iou = ciou_loss(pred, gt)
    assert got_iou.item() == pytest.approx(iou)
    assert loss.item() == pytest.approx(1 - (iou - u - alpha * v), rel=1e-12)
    giou, _ = giou_loss(pred, gt)
    assert giou.item() == pytest.approx(1 - iou)  # enclosing box == union


def test_ciou_alpha_only_when_iou_above_half():
    # same aspect mismatch, IoU below 0.5: CIoU = IoU - u exactly (v has no effect)
    pred, gt = T([0, 0, 4, 1]), T([0, 0, 4, 3])  # IoU 1/3
    ciou, iou = complete_iou(pred, gt)
    u = 1.0**2 / (4**2 + 3**2)
    assert iou.item() == pytest.approx(1 / 3)
    assert ciou.item() == pytest.approx(1 / 3 - u, rel=1e-12)
    # above 0.5 the aspect term lowers CIoU below IoU - u
    pred2 = T([0, 0, 4, 2])
    ciou2, iou2 = complete_iou(pred2, gt)
    u2 = 0.5**2 / 25
    assert ciou2.item() < iou2.item() - u2 - 1e-6


def test_ciou_alpha_carries_no_gradient():
    gt = T([0, 0, 4, 3])
    pred = T([0.2, 0.1, 3.9, 2.1]).requires_grad_()  # IoU 7.4 / 12 > 0.5, no ties with gt edges
    ciou, iou = complete_iou(pred, gt)
    ciou.sum().backward()
    # reference: IoU - u - alpha * v with alpha a constant
    p = pred.detach().clone().requires_grad_()
    x1, y1, x2, y2 = p[0]
    w1, h1 = x2 - x1, y2 - y1
    v = 4 / math.pi**2 * (math.atan(4 / 3) - torch.atan(w1 / h1)) ** 2
    iou_ref = (torch.min(x2, gt[0, 2]) - torch.max(x1, gt[0, 0])) * (torch.min(y2, gt[0, 3]) - torch.max(y1, gt[0, 1]))
    iou_ref = iou_ref / (w1 * h1 + 12 - iou_ref)
    alpha = (v / (1 - iou_ref + v)).detach()
    u = (((x1 + x2) / 2 - 2) ** 2 + ((y1 + y2) / 2 - 1.5) ** 2) / 25
    ref = iou_ref - u - alpha * v
    assert ciou.item() == pytest.approx(ref.item(), rel=1e-12)
    ref.backward()
    assert torch.allclose(pred.grad, p.grad, atol=1e-12)
    assert alpha.item() > 0  # the aspect term is active here


def test_identical_boxes_give_zero_loss():
    boxes = T([0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.9, 0.4])
    for fn in (giou_loss, ciou_loss):
        loss, iou = fn(boxes, boxes.clone())
        assert loss.item() == pytest.approx(0.0, abs=1e-12)
        assert torch.allclose(iou, torch.ones(2, dtype=torch.float64))
    assert l1_loss(boxes, boxes).item() == 0.0


@pytest.mark.parametrize("fn", [giou_loss, ciou_loss])
def test_degenerate_boxes_have_finite_values_and_gradients(fn):
    pred = torch.tensor(
        [
            [0.5, 0.5, 0.5, 0.5],  # a point
            [0.2, 0.2, 0.2, 0.6],  # zero width
            [0.6, 0.6, 0.2, 0.2],  # inverted (right < left), as an untrained head can produce
            [0.1, 0.1, 0.4, 0.4],  # identical to its gt
            [0.3, 0.3, 0.3, 0.3],  # a point equal to its (point) gt
            [0.0, 0.0, 0.1, 0.1],  # disjoint from its gt
        ],
        requires_grad=True,
    )
    gt = torch.tensor(
        [
            [0.4, 0.4, 0.6, 0.6],
            [0.1, 0.1, 0.5, 0.5],
            [0.1, 0.1, 0.5, 0.5],
            [0.1, 0.1, 0.4, 0.4],
            [0.3, 0.3, 0.3, 0.3],
            [0.8, 0.8, 0.8, 0.9],  # zero-width gt
        ]
    )
    loss, iou = fn(pred, gt)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(iou).all()
    assert torch.isfinite(pred.grad).all()


def test_box_losses_convert_clamp_and_weigh():
    pred = torch.tensor([[[0.5, 0.5, 0.4, 0.4]], [[0.5, 0.5, 0.2, 0.2]]])  # (B,1,4) cxcywh
    gt = torch.tensor([[0.3, 0.3, 0.4, 0.4], [-0.1, 0.9, 0.3, 0.3]])  # xywh, second sticks out of [0,1]
    total, parts = box_losses(pred, gt)
    pred_xyxy = cxcywh_to_xyxy(pred).reshape(-1, 4)
    gt_xyxy = xywh_to_xyxy(gt).clamp(0, 1)
    want_iou, iou = ciou_loss(pred_xyxy, gt_xyxy)
    want_l1 = torch.nn.functional.l1_loss(pred_xyxy, gt_xyxy)
    assert total.item() == pytest.approx(2.0 * want_iou.item() + 5.0 * want_l1.item())
    assert parts["loss_iou"].item() == pytest.approx(want_iou.item())
    assert parts["loss_l1"].item() == pytest.approx(want_l1.item())
    assert parts["iou"].item() == pytest.approx(iou.mean().item())
    # weights select boxes; an all-zero weight gives a zero (but differentiable) loss
    only_first, _ = box_losses(pred, gt, weight=torch.tensor([1.0, 0.0]))
    first, _ = box_losses(pred[:1], gt[:1])
    assert only_first.item() == pytest.approx(first.item())
    p = pred.clone().requires_grad_()
    none, _ = box_losses(p, gt, weight=torch.zeros(2))
    none.backward()
    assert none.item() == 0.0 and torch.equal(p.grad, torch.zeros_like(p))
    giou_total, _ = box_losses(pred, gt, iou_type="giou", iou_weight=1.0, l1_weight=0.0)
    assert giou_total.item() == pytest.approx(giou_loss(pred_xyxy, gt_xyxy)[0].item())
    with pytest.raises(ValueError):
        box_losses(pred, gt, iou_type="diou")


def test_center_loss_is_lowest_at_the_centre_token_and_weighted():
    side = 8
    gt = torch.tensor([[0.25, 0.55, 0.125, 0.2]])  # centre (0.3125, 0.65): token column 2, row 5
    def logits_at(row, col):
        z = torch.full((1, side * side), -5.0)
        z[0, row * side + col] = 5.0
        return z
    at_centre = center_loss(logits_at(5, 2), gt)
    assert at_centre < center_loss(logits_at(5, 3), gt) < center_loss(logits_at(1, 6), gt)
    # the optimum is the Gaussian target itself: its loss is its entropy, below any peaked guess
    z = torch.zeros(1, side * side, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        center_loss(z, gt).backward()
        opt.step()
    p = z.detach().softmax(-1).reshape(side, side)
    assert divmod(int(p.argmax()), side) == (5, 2) and float(p.max()) < 0.5  # soft, sigma = 1 token
    both = torch.cat([logits_at(5, 2), logits_at(0, 0)])
    gts = torch.cat([gt, gt])
    assert center_loss(both, gts, weight=torch.tensor([1.0, 0.0])) == pytest.approx(float(at_centre))
    with pytest.raises(ValueError, match="square token grid"):
        center_loss(torch.zeros(1, 10), gt)


def test_center_edge_loss_is_zero_for_the_true_distances_and_weights_tokens_near_the_centre():
    side = 8
    gt = torch.tensor([[0.25, 0.55, 0.125, 0.2]])  # centre token: column 2, row 5
    centres = (torch.arange(side) + 0.5) / side
    ty, tx = torch.meshgrid(centres, centres, indexing="ij")
    tx, ty = tx.reshape(1, -1), ty.reshape(1, -1)  # row-major token centres
    true = torch.stack([tx - 0.25, ty - 0.55, 0.375 - tx, 0.75 - ty], dim=-1)  # (1, 64, 4)
    assert float(center_edge_loss(true, gt)) == pytest.approx(0.0, abs=1e-6)
    assert float(center_edge_loss(true + 0.01, gt)) == pytest.approx(0.04, rel=1e-5)  # weights sum to 1
    near, far = true.clone(), true.clone()
    near[0, 5 * side + 2] += 0.1  # the centre token's distances are off
    far[0, 0] += 0.1  # a corner token's
    assert float(center_edge_loss(near, gt)) > 100 * float(center_edge_loss(far, gt)) > 0
    edges = true.clone().requires_grad_(True)
    center_edge_loss(edges + 0.05, gt).backward()
    assert float(edges.grad.abs().sum()) > 0
    both = torch.cat([true, true + 1.0])
    assert float(center_edge_loss(both, torch.cat([gt, gt]), weight=torch.tensor([1.0, 0.0]))) == pytest.approx(
        0.0, abs=1e-6)  # the negative sample is left out
    with pytest.raises(ValueError, match="square token grid"):
        center_edge_loss(torch.zeros(1, 10, 4), gt)


def test_score_loss_is_bce_with_logits():
    logits, labels = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1.0, 0.0, 1.0])
    want = -(math.log(1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1))) + math.log(0.5)) / 3
    assert score_loss(logits, labels).item() == pytest.approx(want, rel=1e-6)


def test_box_loss_decreases_when_training_a_tiny_model():
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, template_size=32, search_size=64, feat_sz=16)
    model = build_model(cfg).train()
    g = torch.Generator().manual_seed(1)
    b = 8
    template, online = torch.randn(b, 3, 32, 32, generator=g), torch.randn(b, 3, 32, 32, generator=g)
    search = torch.randn(b, 3, 64, 64, generator=g)
    xy = torch.rand(b, 2, generator=g) * 0.5 + 0.1
    gt = torch.cat([xy, torch.rand(b, 2, generator=g) * 0.25 + 0.1], dim=1)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(30):
        out = model(template, online, search, run_score_head=False)
        loss, _ = box_losses(out["pred_boxes"], gt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0], losses
