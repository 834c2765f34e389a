"""Values of the one view-geometry implementation (crop + resize + flip)."""
import numpy as np
import pytest
import torch

from ccop_plugin.utils.view_geometry import (
    boxes_image_to_view,
    boxes_view_to_image,
    map_boxes_between_views,
    map_points_between_views,
    points_image_to_view,
    points_view_to_image,
)

# (top, left, h, w) crops; size as int (square) or (H, W)
CROPS = [(0, 0, 120, 160), (10, 20, 80, 100), (0, 30, 90, 60)]
SIZES = [64, (48, 80)]


def test_boxes_to_view_hand_values():
    boxes = torch.tensor([[0., 0., 20., 20.], [50., 50., 70., 90.],
                          [15., 5., 25., 15.]])
    crop = (0, 10, 40, 40)  # top, left, h, w; x in [10, 50], y in [0, 40]
    out, frac = boxes_image_to_view(boxes, crop, False, 80)
    # box 0: x in [10, 20] of [0, 20] inside -> half; x2 scale
    # box 1: entirely outside -> fraction 0, squashed onto the crop edge
    # box 2: inside
    assert frac.tolist() == [0.5, 0.0, 1.0]
    assert out.tolist() == [[0., 0., 20., 40.], [80., 80., 80., 80.],
                            [10., 10., 30., 30.]]
    flipped, frac_f = boxes_image_to_view(boxes, crop, True, 80)
    assert torch.equal(frac_f, frac)
    assert flipped.tolist() == [[60., 0., 80., 40.], [0., 80., 0., 80.],
                                [50., 10., 70., 30.]]


def test_non_square_view_and_flip_hand_values():
    # crop x in [20, 120], y in [10, 90] -> view W=80 (x0.8), H=48 (x0.6)
    crop, size = (10, 20, 80, 100), (48, 80)
    out, frac = boxes_image_to_view(torch.tensor([[30., 20., 70., 60.]]),
                                    crop, False, size)
    assert torch.allclose(out, torch.tensor([[8., 6., 40., 30.]]))
    assert frac.item() == 1
    out, _ = boxes_image_to_view(torch.tensor([[30., 20., 70., 60.]]), crop,
                                 True, size)
    assert torch.allclose(out, torch.tensor([[40., 6., 72., 30.]]))
    pts, inside = points_image_to_view(torch.tensor([[30., 20.]]), crop,
                                       True, size)
    assert torch.allclose(pts, torch.tensor([[72., 6.]])) and inside.item()


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('crop', CROPS)
def test_round_trip_image_view_image(crop, flip, size):
    top, left, h, w = crop
    gen = torch.Generator().manual_seed(0)
    # boxes and points inside the crop come back unchanged
    lo = torch.rand(20, 2, generator=gen) * 0.5
    hi = lo + torch.rand(20, 2, generator=gen) * 0.5
    rel = torch.cat([lo, hi], 1)
    boxes = rel * torch.tensor([w, h, w, h]) + torch.tensor(
        [left, top, left, top])
    view, frac = boxes_image_to_view(boxes, crop, flip, size)
    assert torch.allclose(frac, torch.ones(20))
    H, W = (size, size) if isinstance(size, int) else size
    assert (view[:, 2:] >= view[:, :2]).all()
    assert view.min() >= 0 and view[:, 0::2].max() <= W
    assert view[:, 1::2].max() <= H
    back = boxes_view_to_image(view, crop, flip, size)
    assert torch.allclose(back, boxes, atol=1e-4)

    pts = boxes[:, :2]
    pv, inside = points_image_to_view(pts, crop, flip, size)
    assert inside.all()
    assert torch.allclose(points_view_to_image(pv, crop, flip, size), pts,
                          atol=1e-4)
    # a box's corners are points: (x1, y1) lands on x1 (x2 if flipped)
    corner = view[:, 2] if flip else view[:, 0]
    assert torch.allclose(pv[:, 0], corner, atol=1e-4)
    assert torch.allclose(pv[:, 1], view[:, 1], atol=1e-4)


def test_crops_partially_outside_clip_and_fraction():
    crop = (10, 20, 80, 100)  # x in [20, 120], y in [10, 90]
    boxes = torch.tensor([
        [0., 0., 40., 30.],  # x 20/40 inside, y 20/30 inside -> 1/3
        [100., 80., 140., 100.],  # x 20/40, y 10/20 -> 1/4
        [-50., -50., 500., 500.],  # covers the crop: 8000 / 302500
    ])
    view, frac = boxes_image_to_view(boxes, crop, False, 100)
    assert torch.allclose(frac, torch.tensor([1 / 3, 1 / 4, 8000 / 302500]))
    # clipped to the view, x scale 1, y scale 100 / 80
    assert torch.allclose(view, torch.tensor([[0., 0., 20., 25.],
                                              [80., 87.5, 100., 100.],
                                              [0., 0., 100., 100.]]))
    # back to the image: the visible part only
    back = boxes_view_to_image(view, crop, False, 100)
    assert torch.allclose(back, torch.tensor([[20., 10., 40., 30.],
                                              [100., 80., 120., 90.],
                                              [20., 10., 120., 90.]]))


def test_points_inside_is_half_open():
    crop, size = (10, 20, 80, 100), 50  # x in [20, 120), y in [10, 90)
    pts = torch.tensor([[20., 10.], [119.9, 89.9], [120., 50.], [50., 90.],
                        [19.9, 50.], [50., 9.9]])
    out, inside = points_image_to_view(pts, crop, False, size)
    assert inside.tolist() == [True, True, False, False, False, False]
    assert torch.allclose(out[0], torch.tensor([0., 0.]))
    assert torch.allclose(out[2], torch.tensor([50., 25.]))  # not clipped


def test_map_between_views_hand_values():
    full, zoom = (0, 0, 64, 64), (8, 8, 48, 48)  # 64 px image, views 64 px
    # the zoomed view's box [8, 8, 32, 56] is crop [0, 0, 24, 48] -> x4/3
    box = torch.tensor([[8., 8., 32., 56.]])
    out, frac = map_boxes_between_views(box, full, False, zoom, True, 64)
    assert torch.allclose(out, torch.tensor([[32., 0., 64., 64.]]))
    assert frac.item() == 1
    # and back (un-flip, un-zoom)
    back, frac = map_boxes_between_views(out, zoom, True, full, False, 64)
    assert torch.allclose(back, box) and frac.item() == 1
    # a box half outside the zoomed view keeps its visible half
    out, frac = map_boxes_between_views(torch.tensor([[0., 8., 16., 16.]]),
                                        full, False, zoom, False, 64)
    assert frac.item() == pytest.approx(0.5)
    pts = torch.tensor([[9., 8.], [4., 30.], [63., 0.], [8., 8.]])
    out, valid = map_points_between_views(pts, full, True, zoom, False,
                                          (64, 64))
    # flipped source: x -> 64 - x = 55, 60, 1, 56; zoom: (x - 8) * 4 / 3
    # (56 lands on the right edge x = 64: outside, half-open)
    assert valid.tolist() == [True, False, False, False]
    assert torch.allclose(out[0], torch.tensor([47 * 4 / 3, 0.]))
    assert torch.allclose(out[3], torch.tensor([64., 0.]))
    assert torch.allclose(out[1], torch.tensor([(60 - 8) * 4 / 3,
                                                (30 - 8) * 4 / 3]))


def test_empty_inputs():
    for flip in (False, True):
        b, frac = boxes_image_to_view(torch.zeros(0, 4), CROPS[1], flip, 64)
        assert b.shape == (0, 4) and frac.shape == (0,)
        assert boxes_view_to_image(torch.zeros(0, 4), CROPS[1], flip,
                                   64).shape == (0, 4)
        p, ok = points_image_to_view(torch.zeros(0, 2), CROPS[1], flip, 64)
        assert p.shape == (0, 2) and ok.shape == (0,) and ok.dtype == \
            torch.bool
        p, ok = map_points_between_views(torch.zeros(0, 2), CROPS[1], flip,
                                         CROPS[2], flip, 64)
        assert p.shape == (0, 2) and ok.shape == (0,)
        b, frac = boxes_image_to_view(np.zeros(0, np.float32), CROPS[1],
                                      flip, 64)
        assert isinstance(b, np.ndarray) and b.shape == (0, 4)


@pytest.mark.parametrize('flip', [False, True])
def test_numpy_in_numpy_out_same_values(flip):
    """The pipeline's NumPy path gives the model path's values exactly."""
    boxes = np.array([[0., 0., 40., 30.], [30., 20., 70., 60.],
                      [500., 0., 600., 10.]], np.float32)
    boxes.flags.writeable = False  # e.g. a memory-mapped proposal file
    pts = boxes[:, :2]
    calls = [
        (boxes_image_to_view, boxes, (CROPS[1], flip, 64)),
        (boxes_view_to_image, boxes, (CROPS[1], flip, (48, 80))),
        (points_image_to_view, pts, (CROPS[2], flip, 64)),
        (points_view_to_image, pts, (CROPS[2], flip, 64)),
        (map_boxes_between_views, boxes, (CROPS[1], flip, CROPS[2], True,
                                          64)),
        (map_points_between_views, pts, (CROPS[2], True, CROPS[1], flip,
                                         (48, 80))),
    ]
    for fn, x, args in calls:
        out_np = fn(x, *args)
        out_t = fn(torch.from_numpy(x.copy()), *args)
        if not isinstance(out_np, tuple):
            out_np, out_t = (out_np, ), (out_t, )
        for a, b in zip(out_np, out_t):
            assert isinstance(a, np.ndarray) and a.dtype == b.numpy().dtype
            np.testing.assert_array_equal(a, b.numpy())


def test_tensors_keep_device_and_dtype():
    # the 'meta' device has no data: any NumPy round trip would fail
    boxes = torch.zeros(5, 4, device='meta')
    out, frac = map_boxes_between_views(boxes, CROPS[1], True, CROPS[2],
                                        False, 64)
    assert out.device.type == 'meta' and frac.device.type == 'meta'
    pts, ok = map_points_between_views(torch.zeros(5, 2, device='meta'),
                                       CROPS[1], False, CROPS[2], True,
                                       (64, 64))
    assert pts.device.type == 'meta' and ok.device.type == 'meta'
    b64, _ = boxes_image_to_view(torch.ones(2, 4, dtype=torch.float64),
                                 CROPS[1], False, 64)
    assert b64.dtype == torch.float64
    b_int, _ = boxes_image_to_view(torch.ones(2, 4, dtype=torch.long),
                                   CROPS[1], False, 64)
    assert b_int.dtype == torch.float32
    # crops may be tensors or arrays (as collated metainfo holds them)
    a, _ = boxes_image_to_view(torch.ones(1, 4), np.array(CROPS[1]), False,
                               64)
    b, _ = boxes_image_to_view(torch.ones(1, 4), torch.tensor(CROPS[1]),
                               False, 64)
    assert torch.equal(a, b)


def test_bad_shapes_and_crops_raise():
    with pytest.raises(ValueError, match=r'\(N, 4\)'):
        boxes_image_to_view(torch.zeros(3, 2), CROPS[0], False, 64)
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        points_image_to_view(torch.zeros(3, 4), CROPS[0], False, 64)
    with pytest.raises(ValueError, match='h, w > 0'):
        boxes_image_to_view(torch.zeros(1, 4), (0, 0, 0, 10), False, 64)
