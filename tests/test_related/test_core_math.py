"""Hand-checked cases for the core computations of heat-map proposals, PLRC
and MCL."""
import numpy as np
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.datasets.transforms.grid_regions import GridRegions
from ccop_plugin.models.utils.heatmap_proposals import HeatmapProposalGenerator
from ccop_plugin.models.utils.montage import montage
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


# ------------------------------------------------------------- heat map
def test_heatmap_channel_sum_minmax():
    f = torch.zeros(2, 3, 4, 4)
    f[0, :, 1, 2] = 1.  # sum 3 at (1, 2)
    f[1, 0] = 5.  # constant map -> zeros (no division by zero)
    h = HeatmapProposalGenerator.heatmap(f)
    assert h.shape == (2, 4, 4)
    assert h[0, 1, 2] == 1 and h[0].sum() == 1
    assert torch.all(h[1] == 0)
    up = HeatmapProposalGenerator.heatmap(f, (16, 16))
    assert up.shape == (2, 16, 16) and up.min() >= 0 and up.max() <= 1


def _two_blobs():
    heat = torch.zeros(1, 32, 32)
    heat[0, 2:8, 3:11] = 1.0     # strong blob: x 3..10, y 2..7
    heat[0, 20:30, 18:26] = 0.6  # weaker blob: x 18..25, y 20..29
    return heat


def test_sample_boxes_peaks_with_suppression():
    # window 1.0 (half side 16 px) around the first (corner) peak of each
    # blob covers that blob and not the other
    gen = HeatmapProposalGenerator(num_boxes=3, thr=0.1, window=1.0,
                                   suppress_radius=1.0, min_size=1)
    boxes, valid = gen.sample_boxes(_two_blobs())
    # first the strongest peak's blob, then (its heat suppressed) the other
    assert valid[0].tolist() == [True, True, False]
    assert boxes[0, 0].tolist() == [3., 2., 11., 8.]
    assert boxes[0, 1].tolist() == [18., 20., 26., 30.]
    assert boxes[0, 2].tolist() == [0., 0., 0., 0.]


def test_sample_boxes_without_suppression_repeats_peak():
    gen = HeatmapProposalGenerator(num_boxes=2, window=0.5,
                                   suppress_radius=0.0, min_size=1)
    # radius 0 still suppresses the peak pixel's neighbourhood (>= 0.5 px)
    boxes, valid = gen.sample_boxes(_two_blobs())
    assert valid[0].all()
    assert boxes[0, 0].tolist() == boxes[0, 1].tolist() == [3., 2., 11., 8.]


def test_sample_boxes_whole_window_is_contrastive_crop_box():
    gen = HeatmapProposalGenerator(num_boxes=1, window=2.0, min_size=1)
    boxes, _ = gen.sample_boxes(_two_blobs())
    assert boxes[0, 0].tolist() == [3., 2., 26., 30.]


def test_sample_boxes_batched_matches_single():
    gen = HeatmapProposalGenerator(num_boxes=4, min_size=1)
    torch.manual_seed(0)
    heat = torch.rand(3, 20, 24) ** 4
    b, v = gen.sample_boxes(heat)
    for i in range(3):
        bi, vi = gen.sample_boxes(heat[i:i + 1])
        assert torch.equal(b[i], bi[0]) and torch.equal(v[i], vi[0])


def test_generator_warmup_and_call():
    gen = HeatmapProposalGenerator(num_boxes=3, warmup_iters=5,
                                   warmup_mode='whole')
    feats = torch.rand(2, 8, 4, 4)
    out = gen(feats, (64, 48), cur_iter=0)
    assert [o.tolist() for o in out] == [[[0., 0., 48., 64.]]] * 2
    gen.warmup_mode = 'random'
    out = gen(feats, (64, 48), cur_iter=0)
    for o in out:
        assert o.shape == (3, 4)
        assert (o[:, 2] <= 48).all() and (o[:, 3] <= 64).all()
        assert (o[:, :2] >= 0).all() and (o[:, 2:] > o[:, :2]).all()
    out = gen(feats, (64, 48), cur_iter=10)
    assert all(o.shape[1] == 4 and len(o) >= 1 for o in out)


# ------------------------------------------------------------- PLRC
def test_grid_regions():
    res = GridRegions(4).transform(dict(img=np.zeros((40, 80, 3), np.uint8)))
    p = res['proposals']
    assert p.shape == (16, 4) and p.dtype == np.float32
    assert p[0].tolist() == [0, 0, 20, 10]
    assert p[5].tolist() == [20, 10, 40, 20]  # row 1, col 1
    assert p[15].tolist() == [60, 30, 80, 40]


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


# ------------------------------------------------------------- MCL
def test_montage_geometry():
    B, S = 4, 8
    imgs = torch.arange(B, dtype=torch.float32).view(B, 1, 1, 1).expand(
        B, 3, S, S).contiguous()
    imgs[:, :, :, S // 2:] += 10  # right half differs: checks the resize
    perm = torch.tensor([2, 0, 3, 1])
    canvas, boxes, src = montage(imgs, 2, perm)
    assert canvas.shape == (1, 3, S, S) and src.tolist() == [[2, 0, 3, 1]]
    for cell in range(4):
        x1, y1, x2, y2 = boxes[0, cell].long().tolist()
        patch = canvas[0, 0, y1:y2, x1:x2]
        s = perm[cell].item()
        # the sub-image (nearest 2x down) sits where its box says
        assert patch[:, :2].eq(s).all() and patch[:, 2:].eq(s + 10).all()
    assert boxes[0, 1].tolist() == [4., 0., 8., 4.]
    assert boxes[0, 2].tolist() == [0., 4., 4., 8.]


def test_montage_plain_and_repeats():
    imgs = torch.rand(3, 3, 16, 16)
    canvas, boxes, src = montage(imgs, 1, torch.tensor([0, 1, 2]))
    assert torch.equal(canvas, imgs) and boxes.shape == (3, 1, 4)
    canvas, boxes, src = montage(imgs, 4)  # 16 cells from 3 images
    assert canvas.shape == (1, 3, 16, 16) and src.shape == (1, 16)
    assert set(src.flatten().tolist()) == {0, 1, 2}
