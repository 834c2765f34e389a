"""A regular (non-editable) install ships the configs and tools in
``ccop_plugin/.mim``; from outside the repository they resolve and
``mim train ccop_plugin <config name>`` trains."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.packaging

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SOURCES = ('ccop_plugin', 'configs', 'tools', 'requirements', 'setup.py',
           'MANIFEST.in', 'README.md', 'requirements.txt')


# the narrow ResNet-18 of ccop_plugin.testing (base width 16, hidden layers
# of 64) and no optimizer state: what is tested is that mim finds and runs
# the installed config, not its width
NARROW_MOCO = ('model.backbone.base_channels=16',
               'model.backbone.stem_channels=16',
               'model.neck.in_channels=128', 'model.neck.hid_channels=64',
               'default_hooks.checkpoint.save_optimizer=False')


def _run(cmd, cwd, env=None, timeout=300):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, (cmd, res.stdout[-3000:], res.stderr[-3000:])
    return res


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """Build a wheel from a copy of the sources (without ``.mim``, which
    setup.py must re-create) and install it into a scratch folder."""
    tmp = tmp_path_factory.mktemp('pkg')
    src = tmp / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.egg-info', '.mim')
    for name in SOURCES:
        p = osp.join(REPO, name)
        if osp.isdir(p):
            shutil.copytree(p, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy(p, src / name)
    pip = [sys.executable, '-m', 'pip']
    _run(pip + ['wheel', '-q', '--no-deps', '--no-build-isolation', '-w',
                str(tmp / 'wheel'), str(src)], cwd=tmp)
    wheel, = glob.glob(str(tmp / 'wheel' / '*.whl'))
    site = tmp / 'site'
    _run(pip + ['install', '-q', '--no-deps', '--target', str(site), wheel],
         cwd=tmp)
    env = dict(os.environ, PYTHONPATH=str(site))
    return dict(wheel=wheel, site=str(site), env=env, tmp=tmp)


def test_wheel_contains_every_config_and_tool(installed):
    names = set(zipfile.ZipFile(installed['wheel']).namelist())
    configs = glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                        recursive=True)
    assert len(configs) > 15
    for c in configs:
        rel = osp.relpath(c, osp.join(REPO, 'configs'))
        assert f'ccop_plugin/.mim/configs/{rel}' in names, rel
    assert 'ccop_plugin/.mim/tools/train.py' in names


def test_installed_configs_resolve_outside_the_repository(installed):
    code = (
        'import os.path as osp, sys\n'
        'import ccop_plugin\n'
        'from ccop_plugin.utils import get_config_path, list_configs\n'
        'from mmengine.config import Config\n'
        'assert ccop_plugin.__file__.startswith(sys.argv[1]), '
        'ccop_plugin.__file__\n'
        'names = list_configs()\n'
        'for n in names:\n'
        '    cfg = Config.fromfile(get_config_path(n))\n'  # mmpretrain::, ../
        '    assert get_config_path(n).startswith(sys.argv[1])\n'
        'print(len(names))\n')
    res = _run([sys.executable, '-c', code, installed['site']],
               cwd=str(installed['tmp']), env=installed['env'])
    assert int(res.stdout.split()[-1]) > 15


def test_mim_train_finds_a_config_by_name(installed, tiny_proposal_coco):
    data = installed['tmp'] / 'data'
    data.mkdir()
    tiny_proposal_coco(data, num_imgs=2)
    work = installed['tmp'] / 'work'
    res = _run([
        sys.executable, '-m', 'mim', 'train', 'ccop_plugin',
        'mocov2_resnet18_cpu-tiny.py', '--work-dir', str(work),
        '--cfg-options', f'train_dataloader.dataset.data_root={data}/images/',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=1',
        *NARROW_MOCO
    ], cwd=str(installed['tmp']), env=installed['env'], timeout=600)
    site = installed['site']
    assert f'will use {site}/ccop_plugin/.mim/configs/mocov2/' in res.stdout
    assert f'{site}/ccop_plugin/.mim/tools/train.py' in res.stdout
    assert osp.isfile(work / 'iter_1.pth')
