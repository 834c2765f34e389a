"""IntraObjectHead: the intra-image loss against a hand computation."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401


def square(s, x=0., y=0.):
    return [x, y, x + s, y + s]


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
