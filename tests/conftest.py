import copy
import logging
import os
import os.path as osp
import uuid

import pytest

# Keep the suite deterministic and light on 2-core machines.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Leave mmengine's global default scope as it was after each test.

    Runners and ``register_all_modules`` make 'mmdet' or 'mmpretrain' the
    current scope for the whole process; without this, a test's outcome
    would depend on which tests ran before it.
    """
    from mmengine.registry import DefaultScope
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


def write_tiny_proposal_coco(root, num_imgs=4, size=(120, 150), min_side=40.,
                             with_anns=True):
    """Random JPEGs in ``root/images`` and ``root/proposals.json`` (COCO
    style, 6 random boxes per image unless ``with_anns`` is False)."""
    import json

    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    (root / 'images').mkdir(exist_ok=True)
    images, anns = [], []
    h, w = size
    for i in range(num_imgs):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        name = f'{i:03d}.jpg'
        cv2.imwrite(str(root / 'images' / name), img)
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
        for _ in range(6 if with_anns else 0):
            x, y = rng.uniform(0, w * 0.5), rng.uniform(0, h * 0.5)
            bw = rng.uniform(min_side, w * 0.5)
            bh = rng.uniform(min_side, h * 0.5)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=1, bbox=[x, y, bw, bh],
                             area=bw * bh, iscrowd=0))
    with open(root / 'proposals.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='proposal')]), f)


@pytest.fixture
def tiny_proposal_coco():
    """:func:`write_tiny_proposal_coco`, for tests in any folder."""
    return write_tiny_proposal_coco


CONFIGS = osp.join(osp.dirname(__file__), '..', 'configs')


@pytest.fixture
def tiny_runner(tiny_proposal_coco, tmp_path):
    """Build a runner for a tiny pre-training config on generated data.

    ``tiny_runner(cfg_file, iters=3, with_anns=True, num_imgs=4, edit=None)``:
    ``iters`` iterations at a constant lr for iteration-based configs,
    logging every iteration, no checkpoints; ``edit(cfg)`` may change the
    config before the runner is built.
    """

    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

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


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.getMessage()))


@pytest.fixture
def mm_logs():
    """``(levelno, message)`` of everything logged through mmengine's real
    ``print_log(..., logger='current')`` during the test (a fresh current
    ``MMLogger``, removed afterwards). Unlike a monkeypatched ``print_log``
    it fails the test on an argument the logger refuses, such as a level
    given as a string."""
    from mmengine.logging import MMLogger
    name = f'mm_logs_{uuid.uuid4().hex}'
    logger = MMLogger.get_instance(name, log_level='DEBUG')
    handler = _Records()
    logger.addHandler(handler)
    old_raise, logging.raiseExceptions = logging.raiseExceptions, True
    try:
        yield handler.records
    finally:
        logging.raiseExceptions = old_raise
        logger.removeHandler(handler)
        MMLogger._instance_dict.pop(name, None)
