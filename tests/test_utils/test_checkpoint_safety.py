"""Safe checkpoint loading: malicious pickles are refused everywhere, the
project's own checkpoints load with ``weights_only=True``."""
import argparse
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import ccop_plugin  # noqa: F401  (registers the allowlist)
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError,
    UntrustedCheckpointError,
    load_checkpoint_file,
    load_weights_pickle,
    trust_checkpoints,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs')


class Evil:
    """Unpickling it creates ``marker`` (what an attacker's code would do).
    """

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


def evil_checkpoint(tmp_path, legacy=False):
    marker = tmp_path / 'PWNED'
    path = str(tmp_path / ('evil_legacy.pth' if legacy else 'evil.pth'))
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1)},
                    meta=dict(x=Evil(marker))), path,
               _use_new_zipfile_serialization=not legacy)
    return path, marker


def hub_checkpoint(path, extra=None):
    """A checkpoint with what mmengine's Runner stores besides tensors: the
    message hub (HistoryBuffers of float and int NumPy arrays, a NumPy
    scalar) and plain meta."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance(f'ccop_safety_{osp.abspath(path)}')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    hub.update_scalar('train/iter', 2)
    hub.update_info('eta', np.float64(12.5))
    ckpt = dict(meta=dict(iter=2, seed=0), state_dict={'w': torch.ones(2)},
                message_hub=hub.state_dict(),
                optimizer=dict(state={}, param_groups=[dict(lr=0.1)]))
    ckpt.update(extra or {})
    torch.save(ckpt, str(path))
    return str(path)


def test_import_sets_no_env_var_and_torch_load_refuses(tmp_path):
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    path, marker = evil_checkpoint(tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch's default: weights_only=True
    assert not marker.exists()


@pytest.mark.slow
def test_child_python_keeps_safe_loading(tmp_path):
    """A child process that imports nothing but torch: nothing leaked."""
    path, marker = evil_checkpoint(tmp_path)
    r = subprocess.run(
        [sys.executable, '-c', 'import sys, torch; torch.load(sys.argv[1])',
         path], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode != 0 and 'Weights only load failed' in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_mmengine_loader_refuses_in_one_line(tmp_path, legacy):
    from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
    path, marker = evil_checkpoint(tmp_path, legacy)
    for load in (CheckpointLoader.load_checkpoint, _load_checkpoint,
                 load_checkpoint_file):
        with pytest.raises(UntrustedCheckpointError) as e:
            load(path)
        msg = str(e.value)
        assert '\n' not in msg and path in msg and 'exec' in msg
        assert 'CCOP_TRUST_CHECKPOINTS=1' in msg
        # the library's line names only the opt-in that exists everywhere
        # (mim test has no --trust-checkpoint; tools that do add it)
        assert '--trust-checkpoint' not in msg
    assert not marker.exists()


def test_message_hub_checkpoint_loads_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = hub_checkpoint(tmp_path / 'hub.pth')
    ck = load_checkpoint_file(path)
    assert type(ck['message_hub']['log_scalars']['train/loss']) is \
        HistoryBuffer
    buf = ck['message_hub']['log_scalars']['train/loss']
    assert buf.mean() == pytest.approx(0.375)
    assert buf.statistics('current') == 0.25
    assert ck['message_hub']['runtime_info']['eta'] == 12.5


def test_numpy1_checkpoint_names_load(tmp_path):
    """Checkpoints written under NumPy 1 name ``numpy.core.multiarray``."""
    path = hub_checkpoint(tmp_path / 'hub.pth')
    legacy = str(tmp_path / 'legacy.pth')
    ck = load_checkpoint_file(path)
    torch.save(ck, legacy, _use_new_zipfile_serialization=False)
    with open(legacy, 'rb') as f:
        data = f.read()
    assert b'numpy._core.multiarray' in data
    with open(legacy, 'wb') as f:
        f.write(data.replace(b'numpy._core.multiarray',
                             b'numpy.core.multiarray'))
    back = load_checkpoint_file(legacy)
    assert back['message_hub']['runtime_info']['eta'] == 12.5


class _GetAttr:
    """Pickles as ``getattr(HistoryBuffer, name)``."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, self.name))


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    ok = str(tmp_path / 'ok.pth')
    torch.save(dict(m=_GetAttr('mean')), ok)
    # only the method's name: a loaded file never hands out callables
    assert load_checkpoint_file(ok)['m'] == 'HistoryBuffer.mean'
    for name in ('__init__', 'update', '__class__'):
        bad = str(tmp_path / f'bad{name}.pth')
        torch.save(dict(m=_GetAttr(name)), bad)
        with pytest.raises(UntrustedCheckpointError, match='getattr'):
            load_checkpoint_file(bad)


def test_unreadable_files_give_one_line(tmp_path):
    good = hub_checkpoint(tmp_path / 'good.pth')
    cases = {'empty.pth': b'', 'garbage.pth': os.urandom(3000),
             'text.pth': b'hello world\n'}
    with open(good, 'rb') as f:
        cases['truncated.pth'] = f.read()[:-200]
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / 'adir').mkdir()
    for name in list(cases) + ['adir']:
        path = str(tmp_path / name)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint_file(path)
        assert '\n' not in str(e.value) and path in str(e.value), name
        assert not isinstance(e.value, UntrustedCheckpointError), name
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))


def test_opt_in_loads_refused_file_and_says_so(tmp_path, monkeypatch,
                                               capsys):
    path = str(tmp_path / 'legacy_meta.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)},
                    meta=dict(args=argparse.Namespace(lr=0.1))), path)
    monkeypatch.delenv('CCOP_TRUST_CHECKPOINTS', raising=False)
    with pytest.raises(UntrustedCheckpointError, match='Namespace'):
        load_checkpoint_file(path)
    monkeypatch.setenv('CCOP_TRUST_CHECKPOINTS', '1')
    assert load_checkpoint_file(path)['meta']['args'].lr == 0.1
    err = capsys.readouterr().err
    assert 'CCOP_TRUST_CHECKPOINTS' in err and path in err
    monkeypatch.setenv('CCOP_TRUST_CHECKPOINTS', '0')
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint_file(path)
    trust_checkpoints()
    try:
        assert load_checkpoint_file(path)['meta']['args'].lr == 0.1
    finally:
        trust_checkpoints(False)


def test_weights_pickle_allows_only_numpy_and_containers(tmp_path):
    weights = {'model': {'a': np.arange(6, dtype=np.float32).reshape(2, 3),
                         'b': np.int64(3)},
               '__author__': 'x', 'matching_heuristics': True}
    for proto in (2, 4, 5):
        p = tmp_path / f'w{proto}.pkl'
        p.write_bytes(pickle.dumps(weights, protocol=proto))
        back = load_weights_pickle(str(p))
        assert (back['model']['a'] == weights['model']['a']).all()
        assert back['model']['b'] == 3
    marker = tmp_path / 'PWNED'
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(pickle.dumps(dict(model={}, x=Evil(marker))))
    with pytest.raises(UntrustedCheckpointError) as e:
        load_weights_pickle(str(evil))
    assert 'exec' in str(e.value) and '\n' not in str(e.value)
    assert not marker.exists()
    (tmp_path / 'bad.pkl').write_bytes(b'\x80\x02garbage')
    with pytest.raises(CheckpointError, match='bad.pkl'):
        load_weights_pickle(str(tmp_path / 'bad.pkl'))


def _tiny_pretrain_argv(data, work, iters):
    """The tiny CCOP config's command line with the narrow ResNet-18 of
    ``ccop_plugin.testing`` (checkpoints of about 20 MB, not 186)."""
    from ccop_plugin.testing.models import narrow_cfg_options
    cfg = osp.join(CFG_DIR, 'ccop/ccop_resnet18-fpn_cpu-tiny.py')
    return ['train.py', cfg,
            '--work-dir', str(work), '--cfg-options',
            *narrow_cfg_options(cfg),
            f'train_cfg.max_iters={iters}',
            f'train_dataloader.dataset.data_root={data}/',
            'train_dataloader.dataset.ann_file=proposals.json',
            'train_dataloader.dataset.data_prefix.img_path=images/',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'default_hooks.checkpoint.interval=2',  # and the last
            'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_train_resume_real_pretraining_checkpoint_and_refusal(
        tmp_path, tiny_proposal_coco, capsys):
    """tools/train.py: a real pre-training checkpoint resumes with safe
    loading; a malicious one is refused in one line, exit 1."""
    from mmengine.registry import DefaultScope

    from ccop_plugin.engine.train_cli import main as train_main
    tiny_proposal_coco(tmp_path, num_imgs=4)
    work = tmp_path / 'work'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert train_main(_tiny_pretrain_argv(tmp_path, work, 2)[1:]) == 0
    ckpt = str(work / 'iter_2.pth')
    assert osp.isfile(ckpt)
    load_checkpoint_file(ckpt)  # the allowlist covers it
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert train_main(
            _tiny_pretrain_argv(tmp_path, work, 3)[1:] + ['--resume']) == 0
    assert osp.isfile(work / 'iter_3.pth')
    assert load_checkpoint_file(str(work / 'iter_3.pth'))['meta'][
        'iter'] == 3
    evil, marker = evil_checkpoint(tmp_path)
    capsys.readouterr()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        assert train_main(_tiny_pretrain_argv(
            tmp_path, tmp_path / 'work2', 3)[1:] + ['--resume', evil]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines()
           if ln.startswith('error:')]
    assert len(err) == 1 and evil in err[0] and 'exec' in err[0]
    assert not marker.exists()


@pytest.mark.slow
def test_finetune_checkpoint_resumes(tmp_path):
    """A real (tiny) mmdet fine-tuning checkpoint resumes."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from ccop_plugin.apis import build_finetune_cfg
    from ccop_plugin.datagen import generate_synthetic_coco
    data = str(tmp_path / 'synth')
    generate_synthetic_coco(data, seed=0, num_unlabeled=0, num_train=2,
                            num_val=1, img_size=64)
    cfg_file = osp.join(CFG_DIR, 'mask_rcnn',
                        'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')
    opts = {'train_dataloader.batch_size': 1,
            'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False}
    work = str(tmp_path / 'ft')
    from mmengine.config import Config

    from ccop_plugin.testing import narrow_resnet18
    narrow = Config.fromfile(cfg_file)  # checkpoints of MB, not 100s
    narrow_resnet18(narrow.model)
    for iters, resume in ((1, False), (2, True)):
        cfg = build_finetune_cfg(narrow, work, data_root=data,
                                 max_iters=iters, cfg_options=opts)
        cfg.default_hooks.checkpoint.interval = 1
        cfg.resume = resume
        with DefaultScope.overwrite_default_scope('mmdet'):
            runner = Runner.from_cfg(cfg)
            runner.train()
        if resume:
            assert runner.iter == 2
    ck = load_checkpoint_file(osp.join(work, 'iter_2.pth'))
    assert ck['meta']['iter'] == 2


@pytest.mark.slow
def test_every_mmdet_config_imports_the_plugin(tmp_path):
    """Fine-tuning --resume needs the allowlist: each config imports the
    plugin; a fresh process that only parses a paper config loads a
    checkpoint with the message hub safely."""
    import glob

    from mmengine.config import Config
    for path in glob.glob(osp.join(CFG_DIR, 'mask_rcnn', '*.py')):
        cfg = Config.fromfile(path)
        assert 'ccop_plugin' in cfg.get('custom_imports', {}).get(
            'imports', []), path
    ckpt = hub_checkpoint(tmp_path / 'ft.pth')
    cfg = osp.join(CFG_DIR, 'mask_rcnn',
                   'mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py')
    code = ('import sys\n'
            'from mmengine.config import Config\n'
            'Config.fromfile(sys.argv[1])\n'
            'from mmengine.runner.checkpoint import _load_checkpoint\n'
            'ck = _load_checkpoint(sys.argv[2])\n'
            'print(ck["message_hub"]["log_scalars"]["train/loss"].mean())\n')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    r = subprocess.run([sys.executable, '-c', code, cfg, ckpt],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == '0.375'


class _System:
    def __reduce__(self):
        return (os.system, ('true', ))


def test_blocked_module_refused_in_one_line(tmp_path):
    path = str(tmp_path / 'system.pth')
    torch.save(dict(a=_System()), path)
    with pytest.raises(UntrustedCheckpointError) as e:
        load_checkpoint_file(path)
    assert '\n' not in str(e.value)
    assert f'a reference to {os.system.__module__}.system' in str(e.value)
