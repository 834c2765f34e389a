import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')


@pytest.fixture
def tiny_runner(tiny_proposal_coco, tmp_path):
    """Build a runner for a tiny pre-training config on generated data.

    ``tiny_runner(cfg_file, iters=3, with_anns=True, num_imgs=4, edit=None)``:
    ``iters`` iterations at a constant lr for iteration-based configs,
    logging every iteration, no checkpoints; ``edit(cfg)`` may change the
    config before the runner is built.
    """

    def build(cfg_file, iters=3, with_anns=True, num_imgs=4, edit=None):
        tiny_proposal_coco(tmp_path, num_imgs=num_imgs, with_anns=with_anns)
        cfg = Config.fromfile(osp.join(CONFIGS, cfg_file))
        cfg.train_dataloader.dataset.data_root = str(tmp_path) + '/'
        cfg.train_dataloader.dataset.ann_file = 'proposals.json'
        cfg.train_dataloader.dataset.data_prefix = dict(img_path='images/')
        if cfg.train_cfg.type == 'IterBasedTrainLoop':
            cfg.train_cfg.max_iters = iters
            cfg.param_scheduler = [dict(type='ConstantLR', factor=1.,
                                        by_epoch=False)]
        cfg.work_dir = str(tmp_path / 'work')
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=1000)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        cfg.launcher = 'none'
        if edit is not None:
            edit(cfg)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return Runner.from_cfg(cfg)

    return build
