"""Hand-checked cases for heat-map proposals (HeatmapProposalGenerator)."""
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils.heatmap_proposals import HeatmapProposalGenerator


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
