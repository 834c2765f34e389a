"""Hand-checked cases for the point sampling of PLRC."""
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils.point_sampling import (
    pad_by_image,
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
