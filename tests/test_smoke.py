"""Smoke test of the installation: import, registries, a model from a config.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

PRETRAIN_MODELS = ('CCOP', 'ObjectRoINeck', 'ObjectContrastiveHead',
                   'IntraObjectDiscriminationHead', 'BoxJitterCurriculum',
                   'HeatmapBoxSource', 'PointContrastHead',
                   'PointDistillationHead', 'MCLProjector', 'MCLHead')
PRETRAIN_TRANSFORMS = ('LoadProposals', 'BoxAwareMultiView',
                       'PackBoxSelfSupInputs')


@pytest.mark.slow
def test_import_registers_in_a_fresh_process():
    """`import ccop_plugin` alone fills the registries (no import tricks)."""
    code = ('import ccop_plugin\n'
            'from mmpretrain.registry import MODELS, TRANSFORMS, DATASETS, '
            'HOOKS\n'
            f'assert all(MODELS.get(n) for n in {PRETRAIN_MODELS!r})\n'
            f'assert all(TRANSFORMS.get(n) for n in {PRETRAIN_TRANSFORMS!r})\n'
            "assert DATASETS.get('ProposalImageDataset')\n"
            "assert HOOKS.get('CurriculumHook')\n"
            "assert HOOKS.get('TeacherTempWarmupHook')\n"
            'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('ok')


def test_compiled_ops_and_ximgproc():
    import cv2
    from mmcv.ops import nms, roi_align  # noqa: F401
    assert hasattr(cv2, 'ximgproc'), 'opencv-contrib is shadowed'
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
    keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
    assert keep.tolist() == [0]


def test_tiny_model_from_config_builds_and_runs():
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    import ccop_plugin  # noqa: F401
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/ccop/ccop_resnet18-fpn_cpu-tiny.py'))
    assert cfg.custom_imports.imports == ['ccop_plugin']
    model = MODELS.build(cfg.model)
    size = 64
    inputs = [torch.rand(2, 3, size, size) for _ in range(2)]
    samples = []
    for n in (3, 1):
        boxes = torch.tensor([[4., 4., 40., 40.]]).repeat(n, 1)
        ds = DataSample()
        ds.set_field(torch.stack([boxes, boxes + 2]), 'view_bboxes')
        samples.append(ds)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_img', 'loss_roi', 'loss_intra'}
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.slow
def test_pretraining_configs_import_the_plugin():
    """Pre-training configs load the plugin through `custom_imports`."""
    import glob
    cfgs = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    cfgs = [c for c in cfgs if '_base_' not in c]
    assert cfgs
    for path in cfgs:
        cfg = Config.fromfile(path)
        if cfg.get('default_scope') != 'mmpretrain':
            continue
        assert 'ccop_plugin' in cfg.get('custom_imports', {}).get(
            'imports', []), f'{path}: no custom_imports of ccop_plugin'
