"""tools/train.py never clobbers another run's checkpoints and resumes only
from an intact checkpoint."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ccop_plugin.engine.work_dir import (
    WorkDirError,
    check_work_dir,
    checkpoint_problem,
    find_resume_checkpoint,
    plan_training_start,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _ckpt(work_dir, it):
    path = osp.join(work_dir, f'iter_{it}.pth')
    torch.save(dict(meta=dict(iter=it),
                    state_dict=dict(w=torch.ones(64) * it)), path)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(path)
    return path


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_refuses_a_work_dir_with_checkpoints(tmp_path):
    wd = str(tmp_path / 'run')
    check_work_dir(wd)  # not there yet
    os.makedirs(wd)
    check_work_dir(wd)  # empty
    _ckpt(wd, 2)
    with pytest.raises(WorkDirError, match='already holds checkpoints') as e:
        check_work_dir(wd)
    msg = str(e.value)
    assert '\n' not in msg and wd in msg and 'iter_2.pth' in msg
    assert '--resume' in msg and '--overwrite-work-dir' in msg
    check_work_dir(wd, resume=True)
    check_work_dir(wd, overwrite=True)
    assert plan_training_start(wd, None, overwrite=True) == (False, None)


def test_resume_skips_a_truncated_latest_checkpoint(tmp_path):
    wd = str(tmp_path)
    assert find_resume_checkpoint(wd) is None  # nothing: a new run
    p2, p4 = _ckpt(wd, 2), _ckpt(wd, 4)
    assert checkpoint_problem(p4) is None
    assert find_resume_checkpoint(wd) == p4
    _truncate(p4)
    assert checkpoint_problem(p4) is not None
    warnings = []
    assert plan_training_start(wd, 'auto', warn=warnings.append) == (True,
                                                                     p2)
    assert len(warnings) == 1 and p4 in warnings[0] and p2 in warnings[0]
    assert osp.isfile(p4)  # nothing deleted
    with pytest.raises(WorkDirError, match='cannot resume'):
        plan_training_start(wd, p4)  # named explicitly: no fallback
    _truncate(p2)
    with pytest.raises(WorkDirError, match='no earlier intact') as e:
        find_resume_checkpoint(wd)
    assert p4 in str(e.value) and '\n' not in str(e.value)


def test_resume_when_last_checkpoint_names_a_missing_file(tmp_path):
    wd = str(tmp_path)
    p2 = _ckpt(wd, 2)
    with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(wd, 'iter_6.pth'))
    warnings = []
    assert find_resume_checkpoint(wd, warn=warnings.append) == p2
    assert 'iter_6.pth (no such file)' in warnings[0]


def test_train_cli_refuses_and_keeps_the_checkpoints(tmp_path):
    wd = str(tmp_path / 'run')
    os.makedirs(wd)
    p2 = _ckpt(wd, 2)
    before = open(p2, 'rb').read()
    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'),
         osp.join(REPO, 'configs', 'ccop', 'ccop_resnet18-fpn_cpu-tiny.py'),
         '--work-dir', wd],
        capture_output=True, text=True, cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') and 'Traceback' not in r.stderr
    assert 'already holds checkpoints' in lines[-1]
    assert open(p2, 'rb').read() == before
    assert open(osp.join(wd, 'last_checkpoint')).read() == p2
