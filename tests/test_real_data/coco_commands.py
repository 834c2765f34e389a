"""The README's COCO command lines, read from their one source, and the
single-process tiny-settings variant the real-data test runs.

``docs/commands/coco_pretrain.sh`` holds the lines; README.md shows that file
verbatim (``test_readme_shows_the_commands_file`` checks it). The test runs
every command of the file as written, from a working directory laid out like
the README's (``configs/`` and ``tools/`` linking to the repository,
``data/coco/`` linking to ``tests/data/real_photos``), with only these
changes (:func:`tiny`):

* ``--launcher pytorch --gpus 8`` is dropped: one process (mim's default
  launcher ``none``);
* ``--cfg-options`` for batch size, workers and epochs are appended
  (batch 2, no loader workers, 1 epoch) and checkpoints without the
  optimizer's state (nothing resumes from them, and it is the largest part
  of an R50 checkpoint after the weights), ``--workers 1`` for the
  proposal tool;
* each training reads the first 2 images of its split (``indices=2``):
  one iteration of batch 2, the fewest a run can do;
* Mask R-CNN resizes to at most 512 x 320 px instead of 1333 x 800 (the
  photographs are about 500 x 400; 1/6 of the pixels): training,
  validation and ``mim test`` (the commands' own Resize steps, by their
  pipeline index);
* CCOP's two queues hold 256 keys instead of 65536 and its RoI neck's
  hidden layer is 256 wide instead of 2048 (``PRETRAIN_OVERRIDES``): the
  conversion drops both, so the commands' chain is the same, and the
  pre-training checkpoint is about 250 MB smaller;
* checkpoint names follow the epoch override: ``epoch_800.pth`` /
  ``epoch_12.pth`` become ``epoch_1.pth``;
* mmdet's plain protocol (step 4') gets the settings the commands file
  gives for a short pre-training, ``model.backbone.norm_eval=False
  model.backbone.frozen_stages=-1``: the 2-iteration checkpoint's BN
  statistics are not settled, and with the stored ones the fine-tuning loss
  turns NaN (the run then stops with exit status 1).
"""
import re
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[2]
COMMANDS_FILE = REPO / 'docs' / 'commands' / 'coco_pretrain.sh'
README = REPO / 'README.md'
README_SECTION = '### Pre-training on COCO with `mim train`'
PHOTOS = REPO / 'tests' / 'data' / 'real_photos'

MULTI_GPU = ' --launcher pytorch --gpus 8'
LOADER_OVERRIDES = ('batch_size=2', 'num_workers=0',
                    'persistent_workers=False')
TINY_EPOCHS = 1
#: images each training reads (one batch: one iteration)
TRAIN_IMAGES = 2
#: Mask R-CNN's resize (mmdet's (1333, 800)) in the tiny runs
DET_SCALE = (512, 320)
PLAIN_PROTOCOL = 'mask-rcnn_r50-ccop-pre_fpn_1x_coco.py'
#: CCOP's parts that only the pre-training checkpoint holds, made small
PRETRAIN_OVERRIDES = ('model.queue_len=256', 'model.roi_queue_len=256',
                      'model.roi_neck.hid_channels=256')
# what the commands file says to add after a short pre-training
SHORT_PRETRAINING = ('model.backbone.norm_eval=False',
                     'model.backbone.frozen_stages=-1')


def read_commands(path: Path = COMMANDS_FILE) -> List[str]:
    """Commands of a shell file: continuation lines joined, comments and
    blank lines dropped."""
    cmds, cur = [], ''
    for line in path.read_text().splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith('#')):
            continue
        if s.endswith('\\'):
            cur += s[:-1].rstrip() + ' '
            continue
        cmds.append(cur + s)
        cur = ''
    assert not cur, f'{path}: last command ends with a backslash'
    return cmds


def readme_block(readme: Path = README,
                 section: str = README_SECTION) -> str:
    """Text of the first ```bash block after ``section`` in the README."""
    text = readme.read_text()
    start = text.find(section + '\n')
    if start < 0:
        raise AssertionError(f'{readme}: no section {section!r}')
    m = re.compile(r'```bash\n(.*?)```', re.S).search(text, start)
    if m is None:
        raise AssertionError(f'{readme}: no ```bash block after {section!r}')
    return m.group(1)


def _cfg_options(*keys_values: str) -> str:
    return ' --cfg-options ' + ' '.join(keys_values)


def _det_scale(cmd: str, loaders) -> tuple:
    """``--cfg-options`` items for Mask R-CNN's Resize steps: index 2 of
    the train pipelines (the papers' protocol chooses among ``scales``),
    index 1 of the val / test ones (mmdet's test pipeline)."""
    w, h = DET_SCALE
    out = []
    for dl in loaders:
        if dl == 'train_dataloader':
            key = 'scales' if PLAIN_PROTOCOL not in cmd else 'scale'
            val = f'[({w},{h})]' if key == 'scales' else f'({w},{h})'
            out.append(f"'{dl}.dataset.pipeline.2.{key}={val}'")
        else:
            out.append(f"'{dl}.dataset.pipeline.1.scale=({w},{h})'")
    return tuple(out)


def tiny(cmd: str) -> str:
    """The single-process, tiny-settings variant of one README command."""
    assert cmd.count(MULTI_GPU) <= 1, cmd
    cmd = cmd.replace(MULTI_GPU, '')
    cmd = re.sub(r'epoch_\d+\.pth', f'epoch_{TINY_EPOCHS}.pth', cmd)
    if cmd.startswith('python tools/selective_search.py'):
        return cmd + ' --workers 1'
    if cmd.startswith('mim train'):
        loaders = ['train_dataloader']
        det = ' mmdet ' in cmd
        if det:
            loaders.append('val_dataloader')
        short = SHORT_PRETRAINING if PLAIN_PROTOCOL in cmd else ()
        return cmd + _cfg_options(
            *(f'{dl}.{o}' for dl in loaders for o in LOADER_OVERRIDES
              if not (dl == 'val_dataloader' and o.startswith('batch'))),
            f'train_dataloader.dataset.indices={TRAIN_IMAGES}',
            f'train_cfg.max_epochs={TINY_EPOCHS}',
            'default_hooks.checkpoint.save_optimizer=False', *short,
            *(_det_scale(cmd, loaders) if det else PRETRAIN_OVERRIDES))
    if cmd.startswith('mim test'):
        return cmd + _cfg_options(
            *(f'test_dataloader.{o}' for o in LOADER_OVERRIDES[1:]),
            *_det_scale(cmd, ['test_dataloader']))
    return cmd
