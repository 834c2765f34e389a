"""RoI neck level assignment, curriculum, heads and queue helpers."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils import enqueue_keys, paired_box_iou, queue_logits


def square(s, x=0., y=0.):
    return [x, y, x + s, y + s]


# --------------------------------------------------------------- RoI neck
def test_level_assignment_matches_reference():
    neck = MODELS.build(dict(type='ObjectRoINeck', in_channels=4,
                             hid_channels=8, out_channels=4))
    sizes = [10, 48, 48.5, 96, 97, 192, 193, 224, 300]
    boxes = torch.tensor([square(s) for s in sizes])
    # reference: s<=48 P2, <=96 P3, <=192 P4, <=224 P5
    assert neck.assign_levels(boxes).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    ref = MODELS.build(dict(type='ObjectRoINeck', in_channels=4,
                            hid_channels=8, out_channels=4,
                            oversize_level=0))
    assert ref.assign_levels(boxes)[-1] == 0  # reference quirk for s > 224
    # non-square: sqrt(area) decides
    assert neck.assign_levels(torch.tensor([[0., 0., 96., 24.]])) == 0


def test_roi_pooling_reads_assigned_level():
    neck = MODELS.build(dict(type='ObjectRoINeck', in_channels=2,
                             hid_channels=8, out_channels=4))
    size = 256
    feats = [torch.full((1, 2, size // s, size // s), float(lvl))
             for lvl, s in enumerate((4, 8, 16, 32))]
    rois = torch.tensor([[0.] + square(s, 8, 8) for s in (30, 80, 150, 210)])
    pooled = neck.pool(feats, rois)
    assert pooled.shape == (4, 2, 7, 7)
    for lvl in range(4):
        assert torch.allclose(pooled[lvl], torch.full_like(pooled[lvl], lvl))
    # zero RoIs
    out = neck(feats, torch.zeros(0, 5))
    assert out.shape == (0, 4)


def test_roi_neck_matches_torchvision_roi_align():
    from torchvision.ops import roi_align
    neck = MODELS.build(dict(type='ObjectRoINeck', in_channels=3,
                             hid_channels=8, out_channels=4))
    torch.manual_seed(0)
    feats = [torch.randn(2, 3, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    rois = torch.tensor([[1., 3., 4., 40., 30.]])  # s ~ 30.5 -> P2
    want = roi_align(feats[0], rois, 7, 1 / 4., 0, True)
    assert torch.allclose(neck.pool(feats, rois), want)


# --------------------------------------------------------------- curriculum
def test_jitter_candidates_and_validity():
    cur = MODELS.build(dict(type='BoxJitterCurriculum', n_jitter=10))
    assert cur.get_values() == pytest.approx(
        dict(iou_thr=0.8, mag_xy=0.15, mag_wh=0.35))
    boxes = torch.tensor([[10., 10., 50., 40.], [0., 0., 64., 64.],
                          [60., 5., 64., 30.]])
    cur.set_values(iou_thr=0.6, mag_xy=0.6, mag_wh=1.4)
    torch.manual_seed(0)
    cands, valid = cur.jitter(boxes, (64, 64))
    assert cands.shape == (3, 11, 4) and valid.shape == (3, 11)
    assert torch.equal(cands[:, -1], boxes)  # original box last
    assert valid[:, -1].all()
    assert (cands >= 0).all() and (cands <= 64).all()  # clipped
    iou = paired_box_iou(cands, boxes[:, None])
    assert torch.equal(valid[:, :-1], iou[:, :-1] >= 0.6)
    # zero magnitude: every candidate is the box itself
    cur.set_values(mag_xy=0., mag_wh=0.)
    cands, valid = cur.jitter(boxes, (64, 64))
    assert torch.allclose(cands, boxes[:, None].expand_as(cands))
    assert valid.all()


def test_jitter_distribution_bounds():
    cur = MODELS.build(dict(type='BoxJitterCurriculum', n_jitter=200))
    cur.set_values(mag_xy=0.4, mag_wh=1.0)
    box = torch.tensor([[100., 100., 140., 120.]])  # w 40, h 20
    cands, _ = cur.jitter(box, (1000, 1000))
    c = cands[0, :-1]
    ctr = (c[:, :2] + c[:, 2:]) / 2
    wh = c[:, 2:] - c[:, :2]
    assert ((ctr[:, 0] - 120).abs() <= 0.5 * 0.4 * 40 + 1e-4).all()
    assert ((ctr[:, 1] - 110).abs() <= 0.5 * 0.4 * 20 + 1e-4).all()
    ratio = torch.log(wh / torch.tensor([40., 20.]))
    assert (ratio.abs() <= 0.5 + 1e-4).all()
    assert ratio.abs().max() > 0.3  # actually spread


def test_select_picks_least_similar_valid_candidate():
    cur = MODELS.build(dict(type='BoxJitterCurriculum', n_jitter=3))
    q = F.normalize(torch.tensor([[1., 0.], [0., 1.]]), dim=1)
    # candidate similarities to q: row 0 -> [0.9, -0.5, 0.2, 1.0]
    angles0 = torch.tensor([0.9, -0.5, 0.2, 1.0]).acos()
    k0 = torch.stack([angles0.cos(), angles0.sin()], dim=1)
    k1 = torch.stack([angles0.sin(), angles0.cos()], dim=1)  # same sims
    keys = torch.stack([k0, k1])
    valid = torch.tensor([[True, False, True, True],
                          [False, False, False, True]])
    idx = cur.select(q, keys, valid)
    # row 0: the -0.5 candidate is invalid, so 0.2 wins; row 1: only box
    assert idx.tolist() == [2, 3]
    # random check: never invalid, always the minimum among the valid
    torch.manual_seed(0)
    q = F.normalize(torch.randn(50, 8), dim=1)
    keys = F.normalize(torch.randn(50, 11, 8), dim=2)
    valid = torch.rand(50, 11) > 0.6
    valid[:, -1] = True
    idx = cur.select(q, keys, valid)
    sims = torch.einsum('mc,mkc->mk', q, keys)
    assert valid[torch.arange(50), idx].all()
    best = sims.masked_fill(~valid, 9).min(dim=1).values
    assert torch.allclose(sims[torch.arange(50), idx], best)


# --------------------------------------------------------------- heads
def _hand_intra(q, k, boxes, img, margin, anchor):
    total, count = 0., 0
    n = len(q)
    for i in range(n):
        for j in range(n):
            if i == j or img[i] != img[j]:
                continue
            bi, bj = boxes[i].tolist(), boxes[j].tolist()
            iw = max(0, min(bi[2], bj[2]) - max(bi[0], bj[0]))
            ih = max(0, min(bi[3], bj[3]) - max(bi[1], bj[1]))
            inter = iw * ih
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(bi) + area(bj) - inter) >= 0.05:
                continue
            s_ij = float(q[i] @ k[j])
            anchor_s = float(q[i] @ k[i]) if anchor == 'query' else float(
                q[j] @ k[j])
            total += max(0., s_ij - anchor_s + margin)
            count += 1
    return total / count


@pytest.mark.parametrize('anchor', ['query', 'key'])
def test_intra_loss_equals_hand_computation(anchor):
    head = MODELS.build(dict(type='IntraObjectDiscriminationHead',
                             margin=0.4, anchor=anchor))
    torch.manual_seed(0)
    q = F.normalize(torch.randn(5, 4), dim=1)
    k = F.normalize(torch.randn(5, 4), dim=1)
    boxes = torch.tensor([
        square(10), square(10, 30), square(10, 2, 2),  # image 0: 0~2 overlap
        square(10), square(10, 50, 50)])  # image 1
    img = torch.tensor([0, 0, 0, 1, 1])
    loss = head.loss(q, k, boxes, img)
    assert loss.item() == pytest.approx(
        _hand_intra(q, k, boxes, img, 0.4, anchor), abs=1e-6)
    # the two forms differ on this case
    other = MODELS.build(dict(type='IntraObjectDiscriminationHead',
                              anchor='key' if anchor == 'query' else 'query'))
    assert not math.isclose(loss.item(), other.loss(q, k, boxes, img).item())


def test_intra_loss_no_valid_pair_is_zero_with_grad():
    head = MODELS.build(dict(type='IntraObjectDiscriminationHead'))
    q = F.normalize(torch.randn(3, 4), dim=1).requires_grad_()
    k = F.normalize(torch.randn(3, 4), dim=1)
    boxes = torch.tensor([square(10), square(10, 1), square(10, 50)])
    img = torch.tensor([0, 0, 1])  # 0-1 overlap, 2 alone
    loss = head.loss(q, k, boxes, img)
    assert loss.item() == 0
    loss.backward()
    assert q.grad is not None
    empty = head.loss(q[:0], k[:0], boxes[:0], img[:0])
    assert empty.item() == 0


def test_object_contrastive_head_infonce():
    head = MODELS.build(dict(type='ObjectContrastiveHead', temperature=0.2))
    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 8), dim=1)
    k = F.normalize(torch.randn(3, 8), dim=1)
    queue = F.normalize(torch.randn(8, 5), dim=0)
    q.requires_grad_()
    loss = head.loss(*queue_logits(q, k, queue))  # the image head's (pos, neg)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], 1) / 0.2
    want = (-logits.log_softmax(1)[:, 0]).mean()
    assert torch.allclose(loss, want)
    empty = head.loss(*queue_logits(q[:0], k[:0], queue))
    assert empty.item() == 0 and empty.requires_grad


# --------------------------------------------------------------- queue
def test_enqueue_wraps_around():
    queue = torch.zeros(2, 5)
    ptr = torch.zeros(1, dtype=torch.long)
    keys = torch.arange(1., 9.).view(4, 2)  # rows 1..4 (as pairs)
    enqueue_keys(queue, ptr, keys[:3])
    assert int(ptr) == 3
    enqueue_keys(queue, ptr, keys)  # 4 keys from position 3: wraps
    assert int(ptr) == 2
    assert torch.equal(queue.t()[3:], keys[:2])
    assert torch.equal(queue.t()[:2], keys[2:])
    assert torch.equal(queue.t()[2], keys[2])  # from the first write
    # more keys than the queue: the last 5 are kept, in ring order
    many = torch.arange(14.).view(7, 2)
    enqueue_keys(queue, ptr, many)
    assert int(ptr) == (2 + 7) % 5
    order = [(int(ptr) + i) % 5 for i in range(5)]
    assert torch.equal(queue.t()[order], many[-5:])
    enqueue_keys(queue, ptr, many[:0])
    assert int(ptr) == 4
