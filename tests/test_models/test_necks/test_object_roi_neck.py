"""ObjectRoINeck: FPN level assignment and RoI pooling."""
import torch
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401


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


def _pool_by_writing_each_level(neck, feats, rois):
    """The pooling as first written: every level written into one zero
    tensor (``index_put``), a zero term per empty level."""
    from ccop_plugin.models.utils.rois import roi_align_level
    out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], 7, 7))
    levels = neck.assign_levels(rois)
    for lvl, (feat, stride) in enumerate(zip(feats, neck.featmap_strides)):
        inds = torch.nonzero(levels == lvl, as_tuple=True)[0]
        if inds.numel() == 0:
            out = out + feat.reshape(-1)[:1].sum() * 0.
            continue
        out = out.index_put((inds, ), roi_align_level(
            feat, rois[inds], stride, 7, 0, True))
    return out


def test_pooling_gathers_levels_in_roi_order_values_and_gradients():
    """One gather instead of a zero tensor copied once per level: the same
    values and gradients, levels interleaved, one level empty (still in
    the graph), and every RoI on one level."""
    neck = MODELS.build(dict(type='ObjectRoINeck', in_channels=3,
                             hid_channels=8, out_channels=4))
    torch.manual_seed(0)
    size = 256
    feats = [torch.randn(2, 3, size // s, size // s, requires_grad=True)
             for s in (4, 8, 16, 32)]
    # P4 is empty; the rows alternate P2 / P3 / P5 in both images
    sides = (30, 80, 210, 40, 90, 220, 20)
    rois = torch.tensor([[float(i % 2)] + square(s, 5. + i, 3.)
                         for i, s in enumerate(sides)])
    assert neck.assign_levels(rois).tolist() == [0, 1, 3, 0, 1, 3, 0]
    weight = torch.randn(len(sides), 3, 7, 7)
    got = neck.pool(feats, rois)
    (got * weight).sum().backward()
    grads = [f.grad.clone() for f in feats]
    for f in feats:
        f.grad = None
    want = _pool_by_writing_each_level(neck, feats, rois)
    (want * weight).sum().backward()
    assert torch.equal(got, want)
    for g, f in zip(grads, feats):
        assert f.grad is not None and torch.equal(g, f.grad)
    one_level = rois[neck.assign_levels(rois) == 0]
    assert torch.equal(neck.pool(feats, one_level),
                       _pool_by_writing_each_level(neck, feats, one_level))
