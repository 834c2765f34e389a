"""A run whose loss turns non-finite stops at that iteration with one line
naming the stage, the config and the iteration, and exits non-zero (it used
to train on through NaN, evaluate an empty result and exit 0)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.runner import Runner
from nan_toy import runner_cfg

from ccop_plugin.engine.hooks import NonFiniteLossError, NonFiniteLossHook

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(osp.dirname(HERE)))


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    with pytest.raises(NonFiniteLossError) as e:
        runner.train()
    return runner, str(e.value)


def test_stops_at_the_first_nan_iteration(tmp_path):
    runner, msg = _train(runner_cfg(tmp_path, nan_at=3))
    assert runner.iter == 2  # iterations 1 and 2 done, 3 is the NaN one
    assert 'pre-training' in msg and 'iteration 3' in msg, msg
    assert 'loss_toy=nan' in msg and 'loss_aux' not in msg, msg
    assert '\n' not in msg
    # checkpoints of the finite iterations only, none of the NaN weights
    ckpts = sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth'))
    assert ckpts == ['iter_1.pth', 'iter_2.pth']


def test_inf_and_fine_tuning_stage(tmp_path):
    _, msg = _train(runner_cfg(tmp_path, nan_at=1, scope='mmdet',
                               value='inf'))
    assert 'fine-tuning' in msg and 'iteration 1' in msg, msg
    assert 'loss_toy=inf' in msg, msg


def test_finite_run_is_untouched(tmp_path):
    runner = Runner.from_cfg(runner_cfg(tmp_path, nan_at=100, max_iters=3))
    runner.train()
    assert runner.iter == 3


def test_stage_and_interval_arguments():
    with pytest.raises(ValueError):
        NonFiniteLossHook(interval=0)
    assert NonFiniteLossHook(stage='probe').stage == 'probe'


def _config_file(tmp_path, scope):
    cfg = runner_cfg(tmp_path / 'work', nan_at=2, scope=scope)
    cfg['custom_imports'] = dict(imports=['nan_toy', 'ccop_plugin'],
                                 allow_failed_imports=False)
    path = tmp_path / 'nan_cfg.py'
    path.write_text('\n'.join(f'{k} = {v!r}' for k, v in cfg.items()))
    return str(path)


def _env():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, HERE, env.get('PYTHONPATH')) if p)
    return env


@pytest.mark.slow  # a Python process per command
def test_train_cli_prints_one_line_and_exits_1(tmp_path):
    cfg = _config_file(tmp_path, 'mmpretrain')
    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: pre-training (nan_cfg.py) stopped at '
                           'iteration 2'), last
    assert 'Traceback' not in r.stderr


@pytest.mark.slow  # a Python process per command
def test_finetune_cli_prints_one_line_and_exits_1(tmp_path):
    cfg = _config_file(tmp_path, 'mmdet')
    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'finetune_detector.py'),
         cfg, '--work-dir', str(tmp_path / 'ft'), '--max-iters', '4'],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: fine-tuning (nan_cfg.py) stopped at '
                           'iteration 2'), last
    assert 'Traceback' not in r.stderr
