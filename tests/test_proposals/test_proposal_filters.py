"""Filters, NMS and per-image determinism on hand-made boxes."""
import numpy as np
import pytest

from ccop_plugin.proposals import (
    ProposalConfig,
    aspect_mask,
    ccop_filter,
    filter_boxes,
    get_preset,
    image_seed,
    min_wh_mask,
    nms,
    parse_shard,
    random_scores,
    rel_size_mask,
    side_mask,
    soco_filter,
)


def xyxy(*rows):
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def test_aspect_open_and_closed_interval():
    # w/h = 1, 3 (boundary), 1/3 (boundary), 2.9, 4, 0.25
    b = xyxy([0, 0, 10, 10], [0, 0, 30, 10], [0, 0, 10, 30], [0, 0, 29, 10],
             [0, 0, 40, 10], [0, 0, 10, 40])
    assert aspect_mask(b).tolist() == [True, False, False, True, False, False]
    assert aspect_mask(b, inclusive=True).tolist() == [
        True, True, True, True, False, False]


def test_degenerate_boxes_never_pass():
    b = xyxy([5, 5, 5, 20], [5, 5, 20, 5], [10, 10, 5, 5])
    assert not aspect_mask(b).any()
    assert not aspect_mask(b, inclusive=True).any()
    assert not side_mask(b, 0.0).any()


def test_side_filter_is_strict_sqrt_area():
    # sqrt(w*h): 20 (== thr, dropped), sqrt(21*20) > 20, 10*50 -> 22.4
    b = xyxy([0, 0, 20, 20], [0, 0, 21, 20], [0, 0, 10, 50])
    assert side_mask(b, 20).tolist() == [False, True, True]


def test_ccop_filter_combines_aspect_and_side():
    cfg = get_preset('ccop')
    b = xyxy([0, 0, 50, 50],    # ok
             [0, 0, 19, 19],    # too small
             [0, 0, 100, 20],   # aspect 5
             [10, 10, 40, 70])  # 30x60 ok
    assert ccop_filter(b, cfg).tolist() == [True, False, False, True]


def test_soco_masks():
    b = xyxy([0, 0, 32, 32], [0, 0, 31, 100], [0, 0, 100, 31])
    assert min_wh_mask(b, 32).tolist() == [True, False, False]
    # image 100x100: sqrt(area ratio) of a 30x30 box is 0.3 (kept), 80x80 0.8
    b = xyxy([0, 0, 29, 29], [0, 0, 30, 30], [0, 0, 80, 80], [0, 0, 81, 81])
    assert rel_size_mask(b, (100, 100)).tolist() == [False, True, True, False]


def test_soco_cascade_relaxes_step_by_step():
    cfg = get_preset('soco')
    hw = (200, 200)
    ok = [0, 0, 100, 100]           # rel 0.5, aspect 1
    tiny_rel = [0, 0, 40, 40]       # rel 0.2 -> fails size only
    long_box = [0, 0, 150, 40]      # aspect 3.75, rel ~0.39 -> fails aspect
    small = [0, 0, 20, 20]          # w, h < 32 -> fails everything
    mask, stage = soco_filter(xyxy(ok, tiny_rel, long_box, small), hw, cfg)
    assert stage == 0 and mask.tolist() == [True, False, False, False]
    mask, stage = soco_filter(xyxy(tiny_rel, long_box, small), hw, cfg)
    assert stage == 1 and mask.tolist() == [True, False, False]
    mask, stage = soco_filter(xyxy(long_box, small), hw, cfg)
    assert stage == 2 and mask.tolist() == [True, False]
    mask, stage = soco_filter(xyxy(small), hw, cfg)
    assert stage == 3 and not mask.any()
    # the full pipeline falls back to the whole image
    boxes, stage = filter_boxes(xyxy(small), hw, cfg, 'x.jpg')
    assert stage == 3
    np.testing.assert_array_equal(boxes, [[0, 0, 200, 200]])
    # ... and keeps every survivor (no NMS, no top-k) otherwise
    many = xyxy(*[[i, i, 100 + i, 100 + i] for i in range(30)])
    boxes, stage = filter_boxes(many, hw, cfg, 'x.jpg')
    assert stage == 0 and len(boxes) == 30


def test_nms_hand_made():
    b = xyxy([0, 0, 10, 10],    # A
             [1, 0, 11, 10],    # IoU(A) = 90/110 = 0.82 -> suppressed by A
             [0, 0, 10, 20],    # IoU(A) = 0.5 exactly -> kept (rule is >)
             [50, 50, 60, 60])  # disjoint
    s = np.array([0.9, 0.8, 0.7, 0.1])
    assert nms(b, s, 0.5).tolist() == [0, 2, 3]
    # the higher-scored of the pair survives
    s2 = np.array([0.1, 0.8, 0.2, 0.9])
    keep = nms(b, s2, 0.5).tolist()
    assert keep[0] == 3 and 1 in keep and 0 not in keep
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError):
        nms(b, s[:2], 0.5)


def test_nms_matches_greedy_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(5, 80, (300, 2))
    b = np.concatenate([xy, xy + wh], 1)
    s = rng.uniform(0.01, 1, 300)
    # plain greedy loop (the reference's rule) as the oracle
    order = np.argsort(-s)
    keep, alive = [], np.ones(300, bool)
    for i in order:
        if not alive[i]:
            continue
        keep.append(i)
        lt = np.maximum(b[i, :2], b[:, :2])
        rb = np.minimum(b[i, 2:], b[:, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), 1)
        area = np.prod(b[:, 2:] - b[:, :2], 1)
        iou = inter / (area[i] + area - inter)
        alive &= ~(iou > 0.5)
    assert nms(b, s, 0.5).tolist() == keep


def test_scores_are_reproducible_per_image():
    a = random_scores(20, 'dir/a.jpg', seed=0)
    assert np.array_equal(a, random_scores(20, 'dir/a.jpg', seed=0))
    assert not np.array_equal(a, random_scores(20, 'dir/b.jpg', seed=0))
    assert not np.array_equal(a, random_scores(20, 'dir/a.jpg', seed=1))
    assert a.min() >= 0.01 and a.max() < 1.0
    assert image_seed('x', 0) == image_seed('x', 0)


def test_filter_boxes_topk_order_independent():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 300, (400, 2)).round()
    wh = rng.uniform(10, 150, (400, 2)).round()
    b = np.concatenate([xy, xy + wh], 1)
    cfg = get_preset('ccop')
    out1, _ = filter_boxes(b, (500, 500), cfg, 'img.jpg')
    out2, _ = filter_boxes(b[rng.permutation(400)], (500, 500), cfg,
                           'img.jpg')
    assert len(out1) == 50
    np.testing.assert_array_equal(out1, out2)
    # every survivor passed the filters and no two overlap by IoU > 0.5
    assert ccop_filter(out1, cfg).all()
    assert len(nms(out1, np.arange(50, 0, -1), 0.5)) == 50
    # max_num / NMS switchable
    out3, _ = filter_boxes(b, (500, 500), cfg.replace(nms_iou=None,
                                                      max_num=None), 'img.jpg')
    assert len(out3) == int(ccop_filter(b, cfg).sum())


def test_config_validation_and_presets():
    assert get_preset('ccop') == ProposalConfig()
    assert get_preset('ccop', max_size=None).max_size is None
    assert get_preset('soco', max_num=10).max_num == 10
    with pytest.raises(ValueError):
        ProposalConfig(mode='slow')
    with pytest.raises(ValueError):
        get_preset('nope')
    with pytest.raises(ValueError):
        ProposalConfig.from_dict({'bogus': 1})
    assert ProposalConfig.from_dict(get_preset('soco').to_dict()) == \
        get_preset('soco')
    assert parse_shard(None) == (0, 1)
    assert parse_shard('3/16') == (3, 16)
    for bad in ('16/16', '1', 'a/b', '-1/4'):
        with pytest.raises(ValueError):
            parse_shard(bad)
