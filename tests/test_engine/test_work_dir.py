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


@pytest.mark.slow
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


@pytest.mark.slow
def test_second_train_run_in_a_held_work_dir_is_refused(tmp_path):
    """Two runs in one work dir (seeds 0 and 123) both trained and the
    first's checkpoints were overwritten by the second's: a run holds the
    work dir, and a second one is refused with one line naming the holder,
    before it writes anything there."""
    from ccop_plugin.utils.folder_lock import FolderLock
    wd = str(tmp_path / 'run')
    with FolderLock(wd):  # the first run, still going
        before = sorted(os.listdir(wd))
        r = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'),
             osp.join(REPO, 'configs', 'ccop',
                      'ccop_resnet18-fpn_cpu-tiny.py'),
             '--work-dir', wd, '--cfg-options', 'randomness.seed=123'],
            capture_output=True, text=True, cwd=str(tmp_path),
            env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
        assert r.returncode == 1, r.stderr
        # (the stack's import warnings aside)
        lines = [ln for ln in r.stderr.splitlines()
                 if ln.strip() and 'Warning' not in ln
                 and not ln.startswith(' ')]
        assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
        assert lines[0].startswith('error: ') and 'in use by' in lines[0]
        assert wd in lines[0] and f'pid {os.getpid()}' in lines[0]
        assert sorted(os.listdir(wd)) == before


@pytest.mark.slow
def test_work_dir_lock_hook_holds_the_work_dir_for_mim_train(tmp_path):
    """``mim train`` builds mmengine's Runner itself: the hook takes the
    lock when the run starts and gives it back when it ends; the lock is
    re-entrant within the process that holds it (tools/train.py + hook)."""
    from types import SimpleNamespace

    from ccop_plugin.engine.hooks import WorkDirLockHook
    from ccop_plugin.engine.work_dir import lock_work_dir
    from ccop_plugin.utils.folder_lock import FolderInUseError, FolderLock
    wd = str(tmp_path / 'run')
    runner = SimpleNamespace(work_dir=wd)
    hook = WorkDirLockHook()
    hook.before_run(runner)  # mim train: the hook takes it ...
    with pytest.raises(FolderInUseError, match='in use by'):
        FolderLock(wd)  # ... so another process would be refused
    hook.after_run(runner)
    FolderLock(wd).close()  # ... and gives it back
    tool_lock = lock_work_dir(wd)  # tools/train.py takes it first
    hook.before_run(runner)  # the hook finds it (same process) ...
    hook.after_run(runner)
    assert tool_lock.held  # ... and leaves it to the tool
    with pytest.raises(FolderInUseError):
        FolderLock(wd)
    tool_lock.close()
    with FolderLock(wd):  # this process holds it on its own (a job that
        hook.before_run(runner)  # trains in-process): not refused
        assert lock_work_dir(wd) is None
        hook.after_run(runner)
    holder = (f'import time; from ccop_plugin.utils.folder_lock import '
              f'FolderLock; lock = FolderLock({wd!r}); print("held", '
              'flush=True); time.sleep(60)')
    other = subprocess.Popen([sys.executable, '-c', holder],
                             stdout=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert other.stdout.readline() == b'held\n'
        with pytest.raises(FolderInUseError,
                           match=f'{wd} is in use by pid {other.pid}'):
            WorkDirLockHook().before_run(runner)  # another run holds it
    finally:
        other.kill()
        other.wait()
