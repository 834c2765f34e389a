"""Several runs in one process (the comparison, the demo) keep their logs
apart: mmdet's runtime names its visualizer ``'visualizer'``, and mmengine
returns an existing instance for a known name, so without unique names every
run after the first wrote its ``vis_data`` into the first run's folder."""
import glob
import os
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL_CFG = osp.join(REPO, 'configs', 'mask_rcnn',
                     'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = osp.join(d, n)
            out[p] = os.stat(p).st_mtime_ns
    return out


@pytest.mark.slow
def test_two_finetunes_in_one_process_log_to_their_own_folders(
        tmp_path, tiny_detection_data):
    from ccop_plugin.apis import finetune_detector
    from ccop_plugin.testing import narrow_resnet18
    data = tiny_detection_data  # shared: the runs only read it
    # the narrow ResNet-18 and no optimizer state in the checkpoints:
    # 5 MB instead of 53 MB per run
    small = Config.fromfile(SMALL_CFG)
    narrow_resnet18(small.model)
    opts = {'train_dataloader.batch_size': 2, 'val_dataloader.batch_size': 1,
            'default_hooks.logger.interval': 1,
            'default_hooks.checkpoint.save_optimizer': False}
    works = [str(tmp_path / f'work{i}') for i in range(2)]
    finetune_detector(small, works[0], data_root=data, max_iters=1,
                      cfg_options=opts)
    before = _files(works[0])
    finetune_detector(small, works[1], data_root=data, max_iters=1,
                      cfg_options=opts)
    assert _files(works[0]) == before  # the second run left it alone
    for w in works:
        scalars = glob.glob(osp.join(w, '*', 'vis_data', 'scalars.json'))
        logs = glob.glob(osp.join(w, '*', '*.log'))
        assert len(scalars) == 1 and len(logs) == 1, w
        assert os.path.getsize(scalars[0]) > 0
        with open(logs[0]) as f:
            assert 'Iter(train) [1/1]' in f.read()


def test_unique_run_names_keep_a_users_experiment_name():
    from ccop_plugin.apis.finetune import unique_run_names
    a, b = Config.fromfile(SMALL_CFG), Config.fromfile(SMALL_CFG)
    unique_run_names(a)
    unique_run_names(b)
    assert a.experiment_name != b.experiment_name
    assert a.visualizer.name == a.experiment_name
    c = Config(dict(experiment_name='mine', visualizer=dict(type='V')))
    unique_run_names(c)
    assert c.experiment_name == 'mine' and c.visualizer.name == 'mine'
