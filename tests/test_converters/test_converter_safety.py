"""Converters: safe loading, one-line errors, output paths and permissions,
FPN-without-weights report, Detectron2 settings and yaml check."""
import argparse
import os
import os.path as osp
import pickle
import shutil
import stat
from collections import OrderedDict

import numpy as np
import pytest
import torch

from ccop_plugin.converters import (
    ConversionError,
    convert_to_detectron2,
    convert_to_mmdet,
    expected_keys_from_config,
    save_detectron2,
)
from ccop_plugin.converters.cli import main

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL_CFG = osp.join(
    REPO, 'configs/mask_rcnn',
    'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')


def mmdet_main(argv):
    return main(argv)


def d2_main(argv):
    return main(argv, default_format='detectron2')


class Evil:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


def _error_lines(err):
    return [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.parametrize('fmt', ['mmdet', 'detectron2'])
def test_malicious_checkpoint_refused_by_both_converters(tmp_path, fmt,
                                                         capsys):
    marker = tmp_path / 'PWNED'
    src = str(tmp_path / 'evil.pth')
    # real ResNet-18 weight names and shapes (a backbone at base width 8),
    # the payload in meta
    from mmdet.models.backbones import ResNet
    sd = {'backbone.' + k: v for k, v in ResNet(
        depth=18, base_channels=8, stem_channels=8).state_dict().items()}
    torch.save(dict(state_dict=sd, meta=dict(x=Evil(marker))), src)
    out = str(tmp_path / ('out.pth' if fmt == 'mmdet' else 'out.pkl'))
    main = mmdet_main if fmt == 'mmdet' else d2_main
    assert main([src, out]) == 1
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and src in err[0] and 'exec' in err[0]
    assert 'CCOP_TRUST_CHECKPOINTS=1' in err[0]
    assert not marker.exists() and not osp.exists(out)


def test_malicious_pkl_refused(tmp_path, capsys):
    marker = tmp_path / 'PWNED'
    src = tmp_path / 'evil.pkl'
    src.write_bytes(pickle.dumps(
        {'model': {'stem.conv1.weight': np.zeros((64, 3, 7, 7))},
         'x': Evil(marker)}))
    assert mmdet_main([str(src), str(tmp_path / 'out.pth')]) == 1
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(src) in err[0] and 'builtins.exec' in err[0]
    assert not marker.exists()


def test_real_checkpoint_and_d2_pkl_convert_safely(tmp_path, real_ckpt,
                                                   narrow_small_cfg, capsys):
    out = str(tmp_path / 'mm.pth')
    assert mmdet_main([real_ckpt, out, '--config', narrow_small_cfg]) == 0
    assert 'missing (in the target, not in the checkpoint): 0 keys' in \
        capsys.readouterr().out
    assert torch.load(out, weights_only=True)['state_dict']
    pkl = str(tmp_path / 'd2.pkl')
    assert d2_main([real_ckpt, pkl]) == 0
    back = str(tmp_path / 'back.pth')
    assert mmdet_main([pkl, back]) == 0  # .pkl read by the safe unpickler
    a = torch.load(out, weights_only=True)['state_dict']
    b = torch.load(back, weights_only=True)['state_dict']
    assert set(b) <= set(a) and all(torch.equal(a[k], b[k]) for k in b)


def test_opt_in_loads_legacy_file_and_says_so(tmp_path, narrow_ccop_sd,
                                              monkeypatch, capsys):
    src = str(tmp_path / 'legacy.pth')
    query = {k: v for k, v in narrow_ccop_sd.items()  # what converts
             if k.startswith(('backbone.', 'neck.'))}
    torch.save(dict(state_dict=query,
                    meta=dict(args=argparse.Namespace(lr=0.1))), src)
    out = str(tmp_path / 'out.pth')
    monkeypatch.delenv('CCOP_TRUST_CHECKPOINTS', raising=False)
    assert mmdet_main([src, out]) == 1
    assert 'Namespace' in capsys.readouterr().err
    from ccop_plugin.utils.checkpoint_safety import trust_checkpoints
    try:
        assert mmdet_main([src, out, '--trust-checkpoint']) == 0
    finally:
        trust_checkpoints(False)
    err = capsys.readouterr().err
    assert '--trust-checkpoint' in err and f'loading {src}' in err
    assert osp.isfile(out)
    os.remove(out)
    monkeypatch.setenv('CCOP_TRUST_CHECKPOINTS', '1')
    assert mmdet_main([src, out]) == 0
    assert f'loading {src}' in capsys.readouterr().err


def test_output_that_is_the_input_is_refused(tmp_path, real_ckpt, capsys,
                                             monkeypatch):
    # a copy of its own: the test runs in its folder and links to it
    real_ckpt = shutil.copy(real_ckpt, tmp_path)
    with open(real_ckpt, 'rb') as f:
        before = f.read()
    monkeypatch.chdir(tmp_path)
    os.symlink(real_ckpt, tmp_path / 'link.pth')
    os.link(real_ckpt, tmp_path / 'hard.pth')
    os.mkdir(tmp_path / 'sub')
    rel = osp.basename(real_ckpt)
    for out in (real_ckpt, rel, f'./sub/../{rel}', 'link.pth', 'hard.pth'):
        assert mmdet_main([real_ckpt, out]) == 1, out
        err = _error_lines(capsys.readouterr().err)
        assert len(err) == 1 and 'the output is the input' in err[0], out
    for out in ('link.pth', 'hard.pth'):  # also when src is the link
        assert mmdet_main([out, real_ckpt]) == 1
    assert mmdet_main([real_ckpt, 'sub']) == 1
    assert 'is a directory' in capsys.readouterr().err
    with open(real_ckpt, 'rb') as f:
        assert f.read() == before


@pytest.mark.parametrize('mask', [0o022, 0o002], ids=['022', '002'])
def test_outputs_get_umask_permissions(tmp_path, real_ckpt, mask):
    old = os.umask(mask)
    try:
        out, pkl = str(tmp_path / 'mm.pth'), str(tmp_path / 'd2.pkl')
        assert mmdet_main([real_ckpt, out]) == 0
        assert d2_main([real_ckpt, pkl]) == 0
    finally:
        os.umask(old)
    for f in (out, pkl):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o666 & ~mask, f
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


def test_bad_inputs_give_one_line_errors(tmp_path, real_ckpt, capsys):
    with open(real_ckpt, 'rb') as f:
        data = f.read()
    cases = {'empty.pth': b'', 'garbage.pth': os.urandom(2000),
             'truncated.pth': data[:len(data) // 2],
             'garbage.pkl': b'\x80\x02not a pickle'}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / 'adir.pth').mkdir()
    for name in list(cases) + ['adir.pth', 'missing.pth']:
        src = str(tmp_path / name)
        assert mmdet_main([src, str(tmp_path / 'out.pth')]) == 1, name
        err = _error_lines(capsys.readouterr().err)
        assert len(err) == 1 and src in err[0], (name, err)
        assert 'Traceback' not in err[0]
    assert not osp.exists(tmp_path / 'out.pth')


def test_detectron2_output_suffix_checked_before_the_work(tmp_path, capsys):
    # the input does not even exist: the suffix error comes first
    assert d2_main([str(tmp_path / 'missing.pth'),
                    str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err
    assert 'out.pth' in err and '.pkl' in err and 'missing' not in err


def test_fpn_that_gets_no_weights_is_reported(tmp_path, narrow_small_cfg,
                                              capsys):
    """MoCo v2 / DenseCL style input (no FPN) into an FPN-transfer config
    (the narrow ResNet-18 of ``narrow_small_cfg``: 3 MB files, not 45)."""
    from mmdet.models.backbones import ResNet
    sd = OrderedDict(('backbone.' + k, v) for k, v in ResNet(
        depth=18, base_channels=16, stem_channels=16).state_dict().items())
    sd['neck.mlp.0.weight'] = torch.randn(16, 128)
    sd['queue'] = torch.randn(16, 8)
    expected = expected_keys_from_config(narrow_small_cfg)
    res = convert_to_mmdet(dict(state_dict=sd), expected=expected)
    neck = [k for k in res.missing if k.startswith('neck.')]
    assert neck and len(neck) == len(
        [k for k in expected if k.startswith('neck.')
         and not k.endswith('num_batches_tracked')])
    assert not [k for k in res.missing if k.startswith('backbone.')]
    assert any('FPN gets no weights' in w and 'no FPN' in w
               for w in res.warnings)
    src = str(tmp_path / 'moco.pth')
    torch.save(dict(state_dict=sd), src)
    assert mmdet_main([src, str(tmp_path / 'o.pth'), '--config',
                       narrow_small_cfg]) == 0
    out = capsys.readouterr().out
    assert f'missing (in the target, not in the checkpoint): {len(neck)} ' \
        'keys' in out
    assert 'WARNING: the target FPN gets no weights' in out
    # backbone only on purpose: nothing missing, no warning
    res = convert_to_mmdet(dict(state_dict=sd), with_fpn=False,
                           expected=expected_keys_from_config(
                               narrow_small_cfg, with_fpn=False))
    assert not res.missing and not res.warnings


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_detectron2_settings_printed_and_checked(tmp_path, real_ckpt,
                                                 fake_ccop_sd, capsys):
    from ccop_plugin.converters import (
        detectron2_settings,
        read_detectron2_config,
    )
    d2, _ = convert_to_detectron2(fake_ccop_sd)
    settings = {s.key: s for s in detectron2_settings(d2)}
    assert settings['MODEL.FPN.NORM'].allowed[0] == 'SyncBN'
    assert '' not in settings['MODEL.FPN.NORM'].allowed
    assert settings['MODEL.FPN.OUT_CHANNELS'].allowed == (128, )
    assert settings['MODEL.RESNETS.DEPTH'].allowed == (18, )
    assert settings['MODEL.RESNETS.RES2_OUT_CHANNELS'].allowed == (64, )
    short, _ = convert_to_detectron2(fake_ccop_sd, full_names=False)
    assert [s.key for s in detectron2_settings(short)] == list(settings)
    base = _write(tmp_path / 'd2' / 'Base-RCNN-FPN.yaml',
                  'MODEL:\n  BACKBONE:\n    NAME: "build_resnet_fpn_backbone"'
                  '\n  RESNETS:\n    NORM: "SyncBN"\n')
    assert read_detectron2_config(base)[0]['MODEL.RESNETS.NORM'] == 'SyncBN'
    good = _write(tmp_path / 'd2' / 'sub' / 'good.yaml',
                  '_BASE_: "../Base-RCNN-FPN.yaml"\nMODEL:\n  RESNETS:\n'
                  '    DEPTH: 18\n    RES2_OUT_CHANNELS: 64\n  FPN:\n'
                  '    NORM: "SyncBN"\n    OUT_CHANNELS: 128\n'
                  'INPUT:\n  FORMAT: "RGB"\n')
    out = str(tmp_path / 'ok.pkl')
    assert d2_main([real_ckpt, out, '--config', good]) == 0
    stdout = capsys.readouterr().out
    assert 'Detectron2 settings this export needs:' in stdout
    assert 'MODEL.FPN.NORM: "SyncBN"' in stdout
    assert 'MISMATCH' not in stdout and osp.isfile(out)
    # Detectron2's default FPN.NORM "" (the FPN would load half)
    bad = _write(tmp_path / 'd2' / 'sub' / 'bad.yaml',
                 '_BASE_: "../Base-RCNN-FPN.yaml"\nMODEL:\n  RESNETS:\n'
                 '    DEPTH: 18\n    RES2_OUT_CHANNELS: 64\n  FPN:\n'
                 '    OUT_CHANNELS: 128\n')
    out = str(tmp_path / 'bad.pkl')
    assert d2_main([real_ckpt, out, '--config', bad]) == 1
    cap = capsys.readouterr()
    assert 'MISMATCH  MODEL.FPN.NORM = "" (Detectron2 default)' in cap.out
    assert 'nothing written' in cap.err and not osp.exists(out)
    # a base that cannot be followed is named; STRIDE_IN_1X1 for R50
    lone = _write(tmp_path / 'lone.yaml', '_BASE_: "missing/Base.yaml"\n')
    r50 = OrderedDict((k, v) for k, v in d2_r50().items())
    from ccop_plugin.converters import check_detectron2_config
    lines, n_bad = check_detectron2_config(detectron2_settings(r50), lone)
    text = '\n'.join(lines)
    assert 'missing/Base.yaml not found' in text
    assert 'MISMATCH  MODEL.RESNETS.STRIDE_IN_1X1 = True' in text
    assert n_bad >= 3  # backbone name, stride, FPN norm
    assert d2_main([real_ckpt, str(tmp_path / 'x.pkl'), '--config',
                    SMALL_CFG]) == 1
    assert 'Detectron2 yaml' in capsys.readouterr().err
    (tmp_path / 'broken.yaml').write_text('MODEL: [unclosed\n')
    assert d2_main([real_ckpt, str(tmp_path / 'x.pkl'), '--config',
                    str(tmp_path / 'broken.yaml')]) == 1
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and 'broken.yaml' in err[0]


def d2_r50():
    """Detectron2 names of an R50-FPN (BN in the FPN)."""
    from ccop_plugin.testing.checkpoints import fake_ccop_state_dict
    sd = fake_ccop_state_dict(depth=50, fpn_channels=256)
    return convert_to_detectron2(sd)[0]['model']


def test_save_detectron2_refuses_other_suffix(tmp_path):
    with pytest.raises(ConversionError, match='.pkl'):
        save_detectron2({'model': {}}, str(tmp_path / 'x.pth'))


@pytest.mark.parametrize('fmt', ['mmdet', 'detectron2'])
def test_existing_output_needs_overwrite_and_keeps_its_mode(tmp_path, fmt,
                                                            real_ckpt,
                                                            capsys):
    """An unrelated file at the output path is not replaced silently; with
    --overwrite it is, and a private (0600) file stays private."""
    out = str(tmp_path / ('out.pth' if fmt == 'mmdet' else 'out.pkl'))
    with open(out, 'w') as f:
        f.write('my notes')
    os.chmod(out, 0o600)
    main = mmdet_main if fmt == 'mmdet' else d2_main
    assert main([real_ckpt, out]) == 1
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and out in err[0] and '--overwrite' in err[0], err
    assert open(out).read() == 'my notes'
    assert main([real_ckpt, out, '--overwrite']) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert open(out, 'rb').read(8) != b'my notes'
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['mmdet', 'detectron2'])
def test_full_disk_gives_one_line_and_keeps_the_old_output(tmp_path, fmt,
                                                           real_ckpt):
    """The tool in a process whose files may not grow past a few KB (as on a
    full disk): torch.save's RuntimeError (and pickle's OSError) become one
    line, the previous output is kept and no temporary file is left."""
    import resource
    import signal
    import subprocess
    import sys
    out = str(tmp_path / ('out.pth' if fmt == 'mmdet' else 'out.pkl'))
    with open(out, 'wb') as f:
        f.write(b'previous output')

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
               PYTHONDONTWRITEBYTECODE='1')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'convert_ccop_to_mmdet.py'),
         real_ckpt, out, '--format', fmt, '--overwrite'],
        capture_output=True, text=True, env=env, preexec_fn=small_files,
        timeout=120)
    assert proc.returncode == 1, proc.stderr
    err = _error_lines(proc.stderr)
    assert len(err) == 1 and out in err[0] and 'cannot write' in err[0], err
    assert 'Traceback' not in proc.stderr
    assert open(out, 'rb').read() == b'previous output'
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
