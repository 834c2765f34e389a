"""Hand-checked cases for the point sampling and losses of PLRC."""
import numpy as np
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils.point_sampling import (
    dino_distillation_loss,
    multi_positive_infonce,
    pad_by_image,
    point_pair_labels,
    read_points,
    relative_points_in_boxes,
    sample_points_in_boxes,
    select_key_points,
)


def test_points_inside_boxes():
    torch.manual_seed(0)
    boxes = torch.tensor([[0., 0., 10., 10.], [20., 5., 30., 6.]])
    pts = sample_points_in_boxes(boxes, 50)
    assert pts.shape == (2, 50, 2)
    for b, p in zip(boxes, pts):
        assert (p[:, 0] >= b[0]).all() and (p[:, 0] <= b[2]).all()
        assert (p[:, 1] >= b[1]).all() and (p[:, 1] <= b[3]).all()


def test_read_points_hits_pixel_centres():
    feats = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    # a 4x4 map over an 8x8 input: pixel (i, j) centre at input 2j+1, 2i+1
    pts = [torch.tensor([[1., 1.], [7., 3.]]), torch.tensor([[5., 7.]])]
    out = read_points(feats, pts, (8, 8))
    assert out.shape == (3, 1)
    assert out[:, 0].tolist() == [0., 7., 16 + 14.]


def test_point_pair_labels_and_loss():
    ids_q = torch.tensor([0, 0, 1, 2])
    ids_k = torch.tensor([0, 1, 1, 3])
    pos = point_pair_labels(ids_q, ids_k)
    assert pos.tolist() == [[True, False, False, False]] * 2 + [
        [False, True, True, False], [False] * 4]
    sim = torch.zeros(4, 4)
    # uniform logits: each positive has prob 1/4 -> loss log 4, rows w/o
    # positives ignored
    loss = multi_positive_infonce(sim, pos, 0.2)
    assert torch.isclose(loss, torch.log(torch.tensor(4.)))
    sim2 = torch.where(pos, 10., -10.)
    assert multi_positive_infonce(sim2, pos, 0.2) < 0.8
    assert multi_positive_infonce(sim, torch.zeros_like(pos), 0.2) == 0



def test_distillation_loss_by_hand():
    """2 query points x 3 key points, T_s 0.5, T_t 1, centre (0, 0, 1)."""
    center = torch.tensor([[0., 0., 1.]])
    # student logits / T_s: row 0 (ln 2, 0, 0) -> p = (1/2, 1/4, 1/4);
    # row 1 uniform -> p = 1/3
    s = torch.tensor([[0.5 * np.log(2.), 0., 0.], [0., 0., 0.]],
                     requires_grad=True)
    # teacher minus centre: row 0 (0, 0, 0) -> uniform 1/3;
    # row 1 (ln 3, 0, 0) -> (3/5, 1/5, 1/5)
    t = torch.tensor([[0., 0., 1.], [np.log(3.), 0., 1.]])
    loss = dino_distillation_loss(s, t, center, 0.5, 1.)
    # CE0 = -(1/3)(ln 1/2 + 2 ln 1/4) = 5/3 ln 2; CE1 = ln 3
    expected = (5. / 3. * np.log(2.) + np.log(3.)) / 2.
    assert abs(loss.item() - expected) < 1e-6
    loss.backward()  # gradient reaches the student only
    assert s.grad.abs().sum() > 0
    # without the centre, teacher row 0 is (1, 1, e) / (2 + e):
    # CE0 = (ln 2 + 2 ln 2 + 2e ln 2) / (2 + e)
    e1 = np.e
    ce0 = (3. + 2. * e1) * np.log(2.) / (2. + e1)
    loss0 = dino_distillation_loss(s, t, torch.zeros(1, 3), 0.5, 1.)
    assert abs(loss0.item() - (ce0 + np.log(3.)) / 2.) < 1e-6
    # no points: zero with a graph
    e = torch.zeros(0, 3, requires_grad=True)
    z = dino_distillation_loss(e, e.detach(), center, 0.5, 1.)
    assert z.item() == 0 and z.requires_grad


def test_pad_by_image_masks_variable_counts():
    x = torch.arange(6.).view(3, 2)
    out, mask = pad_by_image(x, [2, 0, 1])
    assert out.shape == (3, 2, 2)
    assert mask.tolist() == [[True, True], [False, False], [True, False]]
    assert torch.equal(out[mask], x)


def test_relative_points_follow_flips():
    rel = torch.tensor([[[0.25, 0.5]]])
    box = torch.tensor([[10., 20., 50., 60.]])
    assert relative_points_in_boxes(rel, box).tolist() == [[[20., 40.]]]
    assert relative_points_in_boxes(rel, box, flip=True).tolist() == [
        [[40., 40.]]]


def test_select_key_points_released_rule():
    # key point i -> argmax_j <k_i, q_j> = j*(i); kept: k[j*(i)], i < keep
    e = torch.eye(3)
    fq = e[None]  # q_j = e_j
    fk = e[[2, 0, 1]][None]  # k_0 = e_2, k_1 = e_0, k_2 = e_1
    idx = select_key_points(fk, fq, 2)
    assert idx.tolist() == [[2, 0]]
