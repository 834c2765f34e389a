"""CCOP with HeatmapBoxSource: boxes from the heat map, warm-up from the
message hub."""
import os.path as osp

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import ccop_plugin  # noqa: F401

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..',
                'configs')


def test_heatmap_ccop_uses_heatmap_boxes():
    import numpy as np
    cfg = Config.fromfile(osp.join(
        ROOT, 'mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py'))
    cfg.model.box_source.generator.warmup_iters = 0
    cfg.model.box_source.part_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict()).train()
    size = 96
    samples = []
    for _ in range(2):
        ds = DataSample()
        ds.set_field(torch.tensor([[[1., 2., 3., 4.]]] * 2), 'view_bboxes')
        # identical crops, no flips: heat-map boxes equal in both views
        ds.set_metainfo(dict(view_crops=np.array([[0, 0, 100, 100]] * 2),
                             view_flips=[False, False]))
        samples.append(ds)
    im_k = torch.randn(2, 3, size, size)
    with torch.no_grad():
        c5_k = model.encoder_k.module[0](im_k)[-1]
    fallback_q, fallback_k = model._get_boxes(samples, 2, torch.device('cpu'))
    bq, bk = model.box_source(c5_k, (size, size), samples, fallback_q,
                              fallback_k)
    for q, k in zip(bq, bk):
        assert len(q) >= 1 and not torch.equal(k[:1], torch.tensor(
            [[1., 2., 3., 4.]]))
        assert torch.allclose(q, k, atol=1e-4)
    # one pass of the key backbone per step: the heat map reuses CCOP's
    key_passes = []
    model.encoder_k.module[0].register_forward_hook(
        lambda *args: key_passes.append(1))
    losses = model.loss([torch.randn(2, 3, size, size),
                         torch.randn(2, 3, size, size)], samples)
    assert all(torch.isfinite(v) for v in losses.values())
    assert len(key_passes) == 1


def test_heatmap_warmup_reads_the_message_hub():
    """The box source's warm-up follows the runner's ``iter`` (message
    hub), 0 outside a runner; checkpoints of the former ``HeatmapCCOP``
    (with its ``step`` buffer) load into CCOP."""
    from mmengine.logging import MessageHub
    cfg = Config.fromfile(osp.join(
        ROOT, 'mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py'))
    src = MODELS.build(cfg.model.box_source.to_dict())
    assert src.generator.warmup_iters == 2
    seen = []
    gen = src.generator
    src.generator = lambda f, s, it: seen.append(it) or gen(f, s, it)
    c5 = torch.rand(1, 4, 3, 3)
    ds = DataSample()
    ds.set_metainfo(dict(view_crops=[[0, 0, 32, 32]] * 2,
                         view_flips=[False, False]))
    box = [torch.tensor([[1., 1., 5., 5.]])]
    hub = MessageHub.get_instance('test_heatmap_warmup_hub')  # now current
    bq, _ = src(c5, (32, 32), [ds], box, box)
    assert seen[-1] == 0  # no runner: warm-up, the whole image
    assert bq[0].tolist() == [[0., 0., 32., 32.]]
    hub.update_info('iter', 5)
    src(c5, (32, 32), [ds], box, box)
    assert seen[-1] == 5

    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict())
    state = dict(model.state_dict(), step=torch.tensor([4]))
    model.load_state_dict(state, strict=True)
