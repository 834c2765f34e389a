"""Losses on fixed batches equal a stored reference (refactoring guard).

Each algorithm's tiny config is built, every parameter and floating buffer
is filled from a generator seeded by its *name* (so the values do not depend
on the order in which modules are built), a fixed batch is fed twice
(queues and the EMA key encoder move between the calls) and the losses must
equal ``tests/data/loss_reference.json`` to 1e-6.

When a refactor renames a parameter, add ``new name -> reference name`` to
``RENAMES`` (or a rule to ``_reference_name``), a loss to ``LOSS_RENAMES``;
when a schedule moves (e.g. a temperature into a hook), change the case's
``prepare`` so that it sets the same value through the new API.
Never rewrite the reference to make a refactor pass; regenerate it only for
an intended change of behaviour::

    CCOP_WRITE_LOSS_REFERENCE=1 python -m pytest \
        tests/test_models/test_loss_reference.py
"""
import json
import os
import os.path as osp
import zlib

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import ccop_plugin  # noqa: F401

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs')
REFERENCE = osp.join(osp.dirname(__file__), '..', 'data',
                     'loss_reference.json')
SIZE = 64
CROPS = [[0, 0, 64, 64], [8, 8, 48, 48], [16, 0, 48, 64]]
FLIPS = [False, True, False]
# new parameter name -> name in the reference run
RENAMES: dict = {'distill_head.center': 'center'}
# MCL's per-level predictors moved into MCLHead
RENAMES.update({
    f'head.predictors.{lvl}.{p}': f'predictors.{lvl}.{p}'
    for lvl in range(4)
    for p in ('0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean',
              '1.running_var', '3.weight', '3.bias')
})

# new loss name -> name in the reference run: the mixes return the wrapped
# algorithm's single ``loss`` as ``loss_<algorithm>`` (so that the logged
# ``loss`` is the total)
LOSS_RENAMES = {'loss_moco': 'loss'}


def _boxes(gen, n, size=SIZE):
    xy = torch.rand(n, 2, generator=gen) * size * 0.6
    wh = 8 + torch.rand(n, 2, generator=gen) * size * 0.4
    return torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)


def _batch(num_views, num_boxes=(3, 5), with_geometry=True):
    gen = torch.Generator().manual_seed(7)
    b = len(num_boxes)
    inputs = [torch.randn(b, 3, SIZE, SIZE, generator=gen)
              for _ in range(num_views)]
    samples = []
    for n in num_boxes:
        ds = DataSample()
        ds.set_field(torch.stack([_boxes(gen, n) for _ in range(num_views)]),
                     'view_bboxes')
        if with_geometry:
            ds.set_metainfo(dict(
                view_crops=np.array(CROPS[:num_views], dtype=np.float32),
                view_flips=FLIPS[:num_views]))
        samples.append(ds)
    return inputs, samples


def _reference_name(model, name):
    """The tensor's name in the reference run."""
    from ccop_plugin.models.algorithms.ccop import CCOP, LEGACY_BRANCH_PREFIXES
    name = RENAMES.get(name, name)
    if name.endswith('queue.keys'):  # queues were two buffers, not a module
        name = name[:-len('.keys')]
    if isinstance(model, CCOP):  # CCOP's object branch was its own parts
        for old, new in LEGACY_BRANCH_PREFIXES:
            if name.startswith(new):
                return old + name[len(new):]
        if name.startswith('object_branch.roi_queue'):
            return name[len('object_branch.'):]
    return name


def _fill_by_name(model):
    """Deterministic values from each tensor's (reference) name."""
    with torch.no_grad():
        for name, t in list(model.state_dict(keep_vars=True).items()):
            if not t.is_floating_point():
                continue
            ref = _reference_name(model, name)
            gen = torch.Generator().manual_seed(zlib.crc32(ref.encode()))
            if name.endswith('running_var'):
                val = 0.5 + torch.rand(t.shape, generator=gen)
            else:
                val = 0.05 * torch.randn(t.shape, generator=gen)
            t.data.copy_(val)


def _no_prepare(model, call):
    pass


def _mcl_prepare(model, call):
    # the CosineEMA momentum schedule reads the run's length and position
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', 10)
    hub.update_info('iter', call)


def _plrc_prepare(model, call):
    # the teacher temperature of iteration ``call`` of the reference run's
    # schedule (0.04 -> 0.07 over 10 iterations), as TeacherTempWarmupHook
    # sets it
    model.distill_head.teacher_temp = 0.04 + (0.07 - 0.04) * min(call / 10,
                                                                 1.)


def _heatmap_cfg(cfg):
    # the reference values were recorded with the earlier HeatmapCCOP model
    # (no warm-up, part_thr=0); CCOP with this box source is that model
    cfg.model.box_source.generator.warmup_iters = 0
    cfg.model.box_source.part_thr = 0.0


CASES = {
    'ccop': dict(config='ccop/ccop_resnet18-fpn_cpu-tiny.py', views=2),
    'ccop_mid_curriculum': dict(
        config='ccop/ccop_resnet18-fpn_cpu-tiny.py', views=2,
        prepare=lambda m, c: m.curriculum.set_progress(0.5)),
    'ccop_intra_key': dict(
        config='ablations/ccop_resnet18-fpn_intra-key_cpu-tiny.py', views=2),
    'mocov2_object_branch': dict(
        config='mix/mocov2_resnet18_object-branch_cpu-tiny.py', views=2),
    'heatmap_ccop': dict(
        config='mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py', views=2,
        edit=_heatmap_cfg),
    'plrc': dict(config='plrc/plrc_resnet18_cpu-tiny.py', views=3,
                 prepare=_plrc_prepare),
    'mcl': dict(config='mcl/mcl_resnet18-fpn_cpu-tiny.py', views=2,
                samples=False, num_boxes=(0, 0, 0, 0), prepare=_mcl_prepare),
}


def _run_case(name):
    case = CASES[name]
    cfg = Config.fromfile(osp.join(ROOT, case['config']))
    if 'edit' in case:
        case['edit'](cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict()).train()
    _fill_by_name(model)
    inputs, samples = _batch(case['views'], case.get('num_boxes', (3, 5)))
    if not case.get('samples', True):
        samples = None
    prepare = case.get('prepare', _no_prepare)
    out = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for call in range(2):
            prepare(model, call)
            torch.manual_seed(100 + call)
            with torch.no_grad():
                losses = model.loss([x.clone() for x in inputs], samples)
            out.append({LOSS_RENAMES.get(k, k): float(v)
                        for k, v in sorted(losses.items())})
    finally:
        torch.set_num_threads(threads)
    return out


def test_write_reference_when_asked():
    if os.environ.get('CCOP_WRITE_LOSS_REFERENCE') != '1':
        pytest.skip('set CCOP_WRITE_LOSS_REFERENCE=1 to rewrite the reference')
    ref = {name: _run_case(name) for name in CASES}
    with open(REFERENCE, 'w') as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write('\n')


@pytest.mark.parametrize('name', sorted(CASES))
def test_losses_equal_reference(name):
    if os.environ.get('CCOP_WRITE_LOSS_REFERENCE') == '1':
        pytest.skip('writing the reference')
    with open(REFERENCE) as f:
        ref = json.load(f)[name]
    got = _run_case(name)
    assert [sorted(c) for c in got] == [sorted(c) for c in ref]
    for g, r in zip(got, ref):
        for k in r:
            assert g[k] == pytest.approx(r[k], abs=1e-6), (name, k)
