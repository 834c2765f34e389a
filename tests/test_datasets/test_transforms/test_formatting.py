"""PackBoxSelfSupInputs and the collate of variable box counts."""
import numpy as np
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.datasets.transforms import (
    BoxAwareMultiView,
    PackBoxSelfSupInputs,
)


def test_pack_and_collate_variable_box_counts():
    from mmengine.dataset import default_collate
    np.random.seed(4)
    t = BoxAwareMultiView(size=32, scale=(0.9, 1.0), part_thr=0.5,
                          area_thr=None)
    pack = PackBoxSelfSupInputs()
    samples = []
    for n in (1, 3, 0):
        img = np.random.randint(0, 255, (50, 60, 3), np.uint8)
        boxes = np.tile(np.array([[5, 5, 55, 45]], np.float32), (n, 1))
        if n == 0:
            boxes = np.array([[0, 0, 60, 50]], np.float32)
        r = t(dict(img=img, proposals=boxes, img_shape=(50, 60),
                   img_path=f'{n}.jpg'))
        samples.append(pack(r))
    batch = default_collate(samples)
    assert len(batch['inputs']) == 2
    assert batch['inputs'][0].shape == (3, 3, 32, 32)
    assert batch['inputs'][0].dtype == torch.uint8
    counts = [ds.view_bboxes.shape for ds in batch['data_samples']]
    assert counts == [(2, 1, 4), (2, 3, 4), (2, 1, 4)]
    assert batch['data_samples'][1].img_path == '3.jpg'
    # the view geometry travels by default (HeatmapBoxSource, PLRC need it)
    ds = batch['data_samples'][1]
    assert ds.view_crops.shape == (2, 4) and len(ds.view_flips) == 2
