"""Box-jitter curriculum: candidates, validity, bounds and selection."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils import paired_box_iou


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
