"""Hand-checked cases for MCL's montage."""
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils.montage import montage


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
