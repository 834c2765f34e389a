"""The README's COCO command lines, run as written on real photographs.

``docs/commands/coco_pretrain.sh`` (shown verbatim in README.md) is run
command by command in a temporary directory laid out as the README expects:
``configs`` and ``tools`` link to this repository, ``data/coco/{train2017,
val2017,annotations}`` link to ``tests/data/real_photos`` (six public-domain
photographs, hand-annotated), and everything the commands write (proposals,
work dirs, converted checkpoints) lands in the temporary directory. The only
changes are those of :func:`coco_commands.tiny` (one process, batch 2, no
loader workers, 1 epoch of 2 images, Mask R-CNN at 512 x 320 px):
proposals -> CCOP pre-training with the paper config (ResNet-50 + FPN) ->
conversion -> Mask R-CNN fine-tuning with both mmdet protocols (each
evaluates on val2017 after its epoch) -> ``mim test``.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from coco_commands import (
    COMMANDS_FILE,
    PHOTOS,
    README,
    REPO,
    TRAIN_IMAGES,
    read_commands,
    readme_block,
    tiny,
)
from mmengine.config import Config

PAPER_CONFIG = 'configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py'
DET_PAPERS = 'mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco'
DET_PLAIN = 'mask-rcnn_r50-ccop-pre_fpn_1x_coco'
STEP_TIMEOUT_S = 900


def _config_proposal_path(config: str) -> str:
    ds = Config.fromfile(str(REPO / config)).train_dataloader.dataset
    return os.path.normpath(os.path.join(ds.data_root, ds.ann_file))


def test_commands_file_is_what_the_readme_shows():
    assert readme_block() == COMMANDS_FILE.read_text(), (
        f'{README}: the block under "Pre-training on COCO with mim train" '
        f'must be {COMMANDS_FILE.relative_to(REPO)} verbatim')


def test_proposal_path_is_the_one_the_paper_config_reads():
    """Step 1 writes the file that step 2's config reads (was: README wrote
    proposals/train2017_ss.json, docs annotations/ss_train2017.json, the
    config read proposals/selective_search_train2017.json)."""
    path = _config_proposal_path(PAPER_CONFIG)
    assert path == 'data/coco/proposals/selective_search_train2017.json'
    (ss,) = [c for c in read_commands() if 'tools/selective_search.py' in c]
    assert f'--out {path}' in ss
    assert f'--out {path}' in readme_block()


def test_no_other_coco_proposal_path_in_docs():
    """Every COCO train2017 proposal file named in the docs and tools is the
    default one (or a variant of its name for other settings)."""
    path = _config_proposal_path(PAPER_CONFIG)
    stem = path[:-len('.json')]
    files = ([README] + sorted((REPO / 'docs').rglob('*.md'))
             + sorted((REPO / 'docs').rglob('*.sh'))
             + sorted((REPO / 'tools').glob('*.py'))
             + sorted((REPO / 'configs').rglob('*.py')))
    bad = []
    for f in files:
        for m in re.finditer(r'data/coco/[\w./-]*(?:ss|proposal)[\w./-]*'
                             r'\.json', f.read_text()):
            if not m.group(0).startswith(stem):
                bad.append(f'{f.relative_to(REPO)}: {m.group(0)}')
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize('name', [DET_PAPERS, DET_PLAIN])
def test_det_configs_let_mim_test_load_mmengine_checkpoints(name, tmp_path):
    """``mim test mmdet <config> --checkpoint epoch_N.pth`` loads a full
    mmengine checkpoint (message hub history included); under torch >= 2.6
    that needs ccop_plugin's compat fix, so the config must import the
    plugin (it did not: UnpicklingError in the README's step 5)."""
    from mmengine.logging import HistoryBuffer
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(hist=HistoryBuffer())), ckpt)
    code = ('import sys, torch\n'
            'from mmengine.config import Config\n'
            'Config.fromfile(sys.argv[1])\n'
            'from mmengine.runner import CheckpointLoader\n'
            'CheckpointLoader.load_checkpoint(sys.argv[2], "cpu")\n')
    env = dict(_env())
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    r = subprocess.run(
        [sys.executable, '-c', code,
         str(REPO / 'configs' / 'mask_rcnn' / f'{name}.py'), str(ckpt)],
        env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]


def _layout(root: Path) -> None:
    for name in ('configs', 'tools'):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    coco = root / 'data' / 'coco'
    coco.mkdir(parents=True)
    for name in ('train2017', 'val2017', 'annotations'):
        (coco / name).symlink_to(PHOTOS / name, target_is_directory=True)


def _env() -> dict:
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join(
        [os.path.dirname(sys.executable), env.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(REPO), env.get('PYTHONPATH')) if p)
    env.setdefault('OMP_NUM_THREADS', '2')
    env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def _run(cmd: str, cwd: Path, log: list) -> str:
    t0 = time.perf_counter()
    r = subprocess.run(['bash', '-c', cmd], cwd=cwd, env=_env(),
                       capture_output=True, text=True,
                       timeout=STEP_TIMEOUT_S)
    out = r.stdout + r.stderr
    log.append((cmd, time.perf_counter() - t0))
    assert r.returncode == 0, f'{cmd}\nexit {r.returncode}\n{out[-4000:]}'
    return out


def _scalars(work_dir: Path) -> list:
    (f,) = work_dir.glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in f.read_text().splitlines()]


@pytest.fixture(scope='module')
def coco_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_run')
    _layout(root)
    cmds = read_commands()
    log, outs = [], []
    for cmd in cmds:
        outs.append(_run(tiny(cmd), root, log))
    print('\n'.join(f'{t:6.1f} s  {c}' for c, t in log))
    print('evaluation:', [_coco_eval(o) for o in outs[3:5] + outs[6:]])
    return root, cmds, outs, log


@pytest.mark.e2e
def test_readme_commands_run_on_real_photos(coco_run):
    root, cmds, outs, _ = coco_run
    kinds = [c.split()[1] if c.startswith('python') else c.split()[1] + ' '
             + c.split()[2] for c in cmds]
    assert kinds == ['tools/selective_search.py', 'train mmpretrain',
                     'tools/convert_ccop_to_mmdet.py', 'train mmdet',
                     'test mmdet', 'tools/convert_ccop_to_mmdet.py',
                     'train mmdet']

    # 1. proposals where the paper config reads them
    prop = root / _config_proposal_path(PAPER_CONFIG)
    data = json.loads(prop.read_text())
    names = [im['file_name'] for im in data['images']]
    assert names == ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg',
                     'rocket.jpg']
    per_img = {i: 0 for i in range(1, 5)}
    for a in data['annotations']:
        per_img[a['image_id']] += 1
    assert all(10 <= n <= 50 for n in per_img.values()), per_img

    # 2. pre-training: the first 2 images, batch 2 -> 1 iteration
    pre = root / 'work_dirs' / Path(PAPER_CONFIG).stem
    ckpt = torch.load(pre / 'epoch_1.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == TRAIN_IMAGES // 2 == 1
    assert ckpt['state_dict']['backbone.layer4.2.conv3.weight'].shape[0] == \
        2048
    losses = [s for s in _scalars(pre) if 'loss' in s]
    assert len(losses) >= 1
    assert all(torch.isfinite(torch.tensor(s['loss'])) for s in losses)

    # 3. conversion: backbone + FPN, and backbone only
    fpn = torch.load(root / 'ccop_r50_fpn_mmdet.pth', map_location='cpu',
                     weights_only=False)['state_dict']
    plain = torch.load(root / 'ccop_r50_mmdet.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert any(k.startswith('neck.') for k in fpn)
    assert all(k.startswith('backbone.') for k in plain)
    src = ckpt['state_dict']['backbone.conv1.weight']
    assert torch.equal(fpn['backbone.conv1.weight'], src)
    assert torch.equal(plain['backbone.conv1.weight'], src)

    # 4. fine-tuning, both protocols, loaded the converted weights and
    # evaluated on the 2 val2017 images; 5. mim test on val2017
    for name, ckpt_file, out in ((DET_PAPERS, 'ccop_r50_fpn_mmdet.pth',
                                  outs[3]),
                                 (DET_PLAIN, 'ccop_r50_mmdet.pth', outs[6])):
        assert f'backend from path: {ckpt_file}' in out, name
        det = torch.load(root / 'work_dirs' / name / 'epoch_1.pth',
                         map_location='cpu', weights_only=False)
        w = det['state_dict']['backbone.conv1.weight']
        # 1 warm-up step (lr <= 4e-5) away from them (the plain protocol
        # too: nothing frozen after a short pre-training, coco_commands)
        assert (w - src).abs().max() < 0.05 * src.abs().max(), name
        assert not torch.equal(w, src), name
    # every logged fine-tuning loss is finite (the plain protocol with the
    # short checkpoint's stored BN statistics went 2370 -> 6.7e11 -> NaN)
    for name in (DET_PAPERS, DET_PLAIN):
        losses = [json.loads(line)['loss']
                  for f in (root / 'work_dirs' / name).glob(
                      '*/vis_data/scalars.json')
                  for line in f.read_text().splitlines()
                  if '"loss"' in line]
        assert losses and all(abs(v) < 1e3 for v in losses), (name, losses)
    for out in (outs[3], outs[4], outs[6]):
        assert 'Epoch(val) [1][2/2]' in out or 'Epoch(test) [2/2]' in out
        assert _coco_eval(out) in ('AP', 'no detections')


EMPTY = 'The testing results of the whole dataset is empty.'


def _coco_eval(out: str) -> str:
    """What mmdet's CocoMetric reported: AP figures, or (after a 1-epoch
    fine-tuning whose heads score every box below test_cfg's 0.05) that
    there was nothing to evaluate."""
    assert 'Evaluating bbox' in out, out[-3000:]
    if 'coco/bbox_mAP' in out and 'coco/segm_mAP' in out:
        return 'AP'
    assert EMPTY in out, out[-3000:]
    return 'no detections'
