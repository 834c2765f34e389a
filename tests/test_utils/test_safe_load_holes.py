"""What safe loading accepts yields only tensors, plain containers and
numeric NumPy values: remote schemes, the message hub's buffers and dtype
states cannot run code, change the process or corrupt memory."""
import copyreg
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import ccop_plugin  # noqa: F401  (patches mmengine's loaders)
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError,
    UntrustedCheckpointError,
    load_checkpoint_file,
    load_weights_pickle,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
URL = 'https://example.invalid/ckpt/x.pth'


class Evil:
    """Unpickling it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


class Reduce:
    """Pickles as ``func(*args)`` then BUILD ``state`` (a crafted file)."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        if self.state is None:
            return (self.func, self.args)
        return (self.func, self.args, self.state)


def _hub_file(tmp_path, monkeypatch, obj):
    """What a download of URL leaves in $TORCH_HOME/hub/checkpoints."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    folder = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    folder.mkdir(parents=True)
    torch.save(obj, str(folder / 'x.pth'))
    return str(folder / 'x.pth')


@pytest.mark.parametrize('scheme', ['https', 'torchvision', 'open-mmlab',
                                    'mmcls'])
def test_remote_schemes_refuse_code(tmp_path, monkeypatch, scheme):
    import mmengine.runner.checkpoint as ckpt
    from mmengine.runner.checkpoint import CheckpointLoader
    marker = tmp_path / 'PWNED'
    _hub_file(tmp_path, monkeypatch,
              dict(state_dict={'w': torch.ones(1)}, meta=Evil(marker)))
    for name in ('get_torchvision_models', 'get_external_models',
                 'get_mmcls_models'):
        monkeypatch.setattr(ckpt, name, lambda: {'x': URL})
    src = URL if scheme == 'https' else f'{scheme}://x'
    with pytest.raises(UntrustedCheckpointError) as e:
        CheckpointLoader.load_checkpoint(src, map_location='cpu')
    assert not marker.exists()
    msg = str(e.value)
    assert '\n' not in msg and URL in msg and 'exec' in msg
    assert 'CCOP_TRUST_CHECKPOINTS=1' in msg


def test_remote_and_mmengine_home_checkpoints_load(tmp_path, monkeypatch):
    """A genuine checkpoint still loads from the hub cache and from an
    open-mmlab:// name that maps to a file under mmengine's home (the
    loaders that call torch.load themselves)."""
    import mmengine.runner.checkpoint as ckpt
    from mmengine.runner.checkpoint import CheckpointLoader
    good = dict(state_dict={'w': torch.ones(2)},
                meta=dict(x=np.float32(1.5), y=np.arange(3)))
    _hub_file(tmp_path, monkeypatch, good)
    back = CheckpointLoader.load_checkpoint(URL, map_location='cpu')
    assert back['meta']['y'].tolist() == [0, 1, 2]
    assert back['meta']['x'] == np.float32(1.5)
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    torch.save(dict(meta=Evil(tmp_path / 'PWNED')), str(home / 'evil.pth'))
    monkeypatch.setattr(ckpt, '_get_mmengine_home', lambda: str(home))
    monkeypatch.setattr(ckpt, 'get_external_models',
                        lambda: {'evil': 'evil.pth'})
    with pytest.raises(UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint('open-mmlab://evil')
    assert not (tmp_path / 'PWNED').exists()


class _PicklesAsHistoryBuffer(Reduce):
    """Pickles as a HistoryBuffer whose state is crafted."""

    @property
    def __class__(self):
        from mmengine.logging import HistoryBuffer
        return HistoryBuffer


def _crafted_history_buffer(methods):
    from mmengine.logging import HistoryBuffer
    state = dict(max_length=10, _log_history=np.array([1., 3.]),
                 _count_history=np.array([1, 1]), statistics_methods=methods)
    return _PicklesAsHistoryBuffer(copyreg.__newobj__, (HistoryBuffer, ),
                                   state)


@pytest.mark.parametrize('methods', ['max', 'none'])
def test_history_buffer_state_cannot_change_the_process(tmp_path, methods):
    from mmengine.logging import HistoryBuffer
    HistoryBuffer()  # the class registry holds its defaults
    registry = dict(HistoryBuffer._statistics_methods)
    path = str(tmp_path / 'hb.pth')
    crafted = {'mean': HistoryBuffer.max if methods == 'max' else None}
    torch.save(dict(message_hub=dict(log_scalars=dict(
        loss=_crafted_history_buffer(crafted)))), path)
    try:
        try:
            ck = load_checkpoint_file(path)
        except CheckpointError as e:  # refusing is fine too
            assert '\n' not in str(e) and path in str(e)
        else:
            buf = ck['message_hub']['log_scalars']['loss']
            assert type(buf) is HistoryBuffer
            assert buf.mean() == 2. and buf.statistics('mean') == 2.
        assert HistoryBuffer._statistics_methods == registry
        assert HistoryBuffer([1., 3.], [1, 1]).statistics('mean') == 2.
    finally:
        HistoryBuffer._statistics_methods.clear()
        HistoryBuffer._statistics_methods.update(registry)


_SUBPROCESS = r'''
import sys
import ccop_plugin
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError, load_checkpoint_file, load_weights_pickle)
for path in sys.argv[1:]:
    load = load_weights_pickle if path.endswith('.pkl') else \
        load_checkpoint_file
    try:
        obj = load(path)
        print('LOADED', path, flush=True)
    except CheckpointError as e:
        print('REFUSED', str(e).replace('\n', ' '), flush=True)
'''


def _dtype(spec, state):
    return Reduce(np.dtype, (spec, False, True), state)


@pytest.mark.slow
def test_crafted_dtypes_are_refused(tmp_path):
    """dtype states with fields / flags, object dtypes and scalars reading
    pointers: refused in one line (loaded in a child: today's code may
    crash while reading them)."""
    multiarray = np._core.multiarray
    flags = _dtype('f8', (3, '<', None, None, None, -1, -1, 0x3f))
    fields = _dtype('f8', (3, '<', None, ('a', ), {'a': (np.dtype('f8'), 0)},
                           8, 1, 0))
    arr = Reduce(multiarray._reconstruct, (np.ndarray, (0, ), b'b'),
                 (1, (2, ), flags, False, b'\0' * 16))
    obj_scalar = Reduce(multiarray.scalar, (
        _dtype('O8', (3, '|', None, None, None, -1, -1, 0)), b'\x10' * 8))
    files = {'flags.pth': dict(d=flags), 'fields.pth': dict(d=fields),
             'array.pth': dict(a=arr), 'array.pkl': dict(model=dict(a=arr)),
             'scalar.pkl': dict(model=dict(a=obj_scalar))}
    paths = []
    for name, obj in files.items():
        path = str(tmp_path / name)
        if name.endswith('.pkl'):
            with open(path, 'wb') as f:
                pickle.dump(obj, f, protocol=2)
        else:
            torch.save(obj, path)
        paths.append(path)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    env.pop('CCOP_TRUST_CHECKPOINTS', None)
    r = subprocess.run([sys.executable, '-c', _SUBPROCESS] + paths,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-1500:])
    lines = r.stdout.splitlines()
    assert len(lines) == len(paths), r.stdout
    for path, line in zip(paths, lines):
        assert line.startswith('REFUSED ' + path + ': refused'), line


@pytest.mark.parametrize('proto', [2, 5])
def test_genuine_numpy_values_round_trip(tmp_path, proto):
    values = dict(
        f32=np.arange(6, dtype=np.float32).reshape(2, 3),
        f64=np.linspace(0, 1, 5), be=np.arange(4, dtype='>f4'),
        i8=np.arange(3, dtype=np.int8), u2=np.arange(3, dtype=np.uint16),
        b=np.array([True, False]), c=np.array([1 + 2j], np.complex64),
        h=np.ones(2, np.float16), fortran=np.asfortranarray(
            np.arange(6.).reshape(2, 3)), empty=np.zeros((0, 3)),
        zero_d=np.array(4.5), s64=np.float64(2.5), si=np.int64(-3),
        sb=np.bool_(True))
    pth, pkl = str(tmp_path / 'v.pth'), str(tmp_path / 'v.pkl')
    torch.save(dict(meta=values), pth)
    with open(pkl, 'wb') as f:
        pickle.dump(dict(model=values), f, protocol=proto)
    for back in (load_checkpoint_file(pth)['meta'],
                 load_weights_pickle(pkl)['model']):
        for k, v in values.items():
            assert type(back[k]) is type(v), k
            assert back[k].dtype == v.dtype and np.array_equal(
                back[k], v), k
            if isinstance(v, np.ndarray):
                assert back[k].flags.writeable and back[k].flags.owndata
                assert back[k].flags.f_contiguous == v.flags.f_contiguous


def test_load_from_detectron2_pkl_says_convert_first(tmp_path):
    """A genuine float32 Detectron2 file given to load_from / resume: what
    to do, not 'it could run code'."""
    from mmengine.runner.checkpoint import CheckpointLoader
    path = str(tmp_path / 'model_final.pkl')
    with open(path, 'wb') as f:
        pickle.dump(dict(model={'backbone.w': np.ones(3, np.float32)},
                         __author__='d2'), f)
    with pytest.raises(CheckpointError) as e:
        CheckpointLoader.load_checkpoint(path)
    msg = str(e.value)
    assert '\n' not in msg and path in msg and 'Detectron2' in msg
    assert 'convert' in msg and 'could run code' not in msg


def test_uncaught_refusal_prints_one_line(tmp_path, capsys):
    """``mim test`` runs mmdet's own test script: an uncaught refusal is
    reported in one line that names an opt-in it has."""
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(meta=Evil(tmp_path / 'PWNED')), path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint_file(path)
    sys.excepthook(type(e.value), e.value, e.value.__traceback__)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path in err[0], err
    assert 'CCOP_TRUST_CHECKPOINTS=1' in err[0]
    assert '--trust-checkpoint' not in err[0]


def _finetune_tool():
    """The module behind ``tools/finetune_detector.py``."""
    from ccop_plugin.engine import finetune_cli
    return finetune_cli


def test_finetune_detector_refusal_one_line_and_opt_in(tmp_path, monkeypatch,
                                                       capsys):
    from mmengine.runner.checkpoint import CheckpointLoader
    tool = _finetune_tool()
    path = str(tmp_path / 'legacy.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)},
                    meta=dict(p=pickle.PicklingError('x'))), path)
    monkeypatch.delenv('CCOP_TRUST_CHECKPOINTS', raising=False)

    def fake_finetune(config, work_dir, checkpoint=None, **kw):
        # what initialising the detector from `checkpoint` does
        CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        return dict(bbox_mAP=0.0)

    monkeypatch.setattr(tool, 'finetune_detector', fake_finetune)
    argv = ['cfg.py', '--work-dir', str(tmp_path / 'w'), '--checkpoint',
            path]
    assert tool.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path in err[0], err
    assert '--trust-checkpoint' in err[0]
    assert tool.main(argv + ['--trust-checkpoint']) == 0
