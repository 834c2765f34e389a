"""Protocol sweep: under which pre-training settings does mmpretrain's MoCo
v2 measurably learn on the synthetic data?

A comparison of pre-training methods means something only when the
reference method learns. Its image InfoNCE over a queue of ``K`` negatives
starts at chance, ``ln(K + 1)`` (the positive is one of ``K + 1`` equally
likely keys); a run *learns* when its final loss (the mean of the last 10 %
of the logged values) is at most :data:`LEARNS_BELOW` of chance.

Each sweep point is one MoCo v2 run (``configs/mocov2/
mocov2_resnet18_cpu-tiny.py``) with a set of :class:`Levers` (backbone
width, view size, crop scales, colour augmentation, queue, key momentum,
lr, temperature, batch, iterations, data-loader workers, number of
unlabeled images). Its record (``write_protocol_sweep`` is the only
writer)::

    {"protocol": {"writer", "config", "learns_below", "final_loss",
                  "machine"},
     "points": [{"name", "levers": {...}, "final_loss", "chance",
                 "over_chance", "learns", "loss_curve": [[iter, loss]...],
                 "seconds", "sec_per_iter"}]}
"""
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

from ..utils.fileio import atomic_write_text
from ..utils.records import read_record, write_record
from .stats import final_losses, read_scalars

PROTOCOL_SWEEP_WRITER = 'ccop_plugin.apis.protocol_sweep.write_protocol_sweep'

#: A run learns when its final InfoNCE is at most this fraction of chance.
LEARNS_BELOW = 0.75

#: The config every sweep point overrides.
SWEEP_CONFIG = 'mocov2/mocov2_resnet18_cpu-tiny.py'
#: a finished run's record of its config's content (its digest)
DIGEST_FILE = 'config_digest.txt'


@dataclass(frozen=True)
class Levers:
    """The settings a sweep point varies (defaults: the tiny config run at
    the old science budget)."""
    width: int = 64           # ResNet-18 stem and base channels
    crop: int = 96            # view side (px)
    scale_min: float = 0.1    # RandomResizedCrop's smallest area fraction
    colour: str = 'mocov2'    # colour augmentation: mocov2 | light |
    #                           gray (every view grey) | none
    blur: bool = True         # MoCo v2's Gaussian blur (p 0.5)
    queue: int = 256          # negatives K
    momentum: float = 0.001   # mmpretrain's: 1 - the key EMA coefficient
    lr: float = 0.03
    temperature: float = 0.2
    batch: int = 16
    iters: int = 200
    workers: int = 0
    num_unlabeled: int = 200
    seed: int = 0             # the run's seed (data order, init, views)
    data_seed: int = 0        # the synthetic data's seed


_COLOUR = dict(
    mocov2=(dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
            0.8, 0.2),
    light=(dict(brightness=0.2, contrast=0.2, saturation=0.1, hue=0.02),
           0.5, 0.1),
)


def view_pipeline(lv: Levers) -> List[Dict]:
    """One view's transforms for the levers."""
    out = [dict(type='RandomResizedCrop', scale=lv.crop,
                crop_ratio_range=(lv.scale_min, 1.), backend='pillow')]
    if lv.colour == 'gray':
        out.append(dict(type='RandomGrayscale', prob=1., keep_channels=True,
                        channel_weights=(0.114, 0.587, 0.2989)))
    elif lv.colour != 'none':
        if lv.colour not in _COLOUR:
            raise ValueError(f'colour must be one of mocov2, light, gray, '
                             f'none; got {lv.colour!r}')
        jitter, p_jitter, p_gray = _COLOUR[lv.colour]
        out += [
            dict(type='RandomApply',
                 transforms=[dict(type='ColorJitter', **jitter)],
                 prob=p_jitter),
            dict(type='RandomGrayscale', prob=p_gray, keep_channels=True,
                 channel_weights=(0.114, 0.587, 0.2989)),
        ]
    if lv.blur:
        out.append(dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
                        magnitude_std='inf', prob=0.5))
    out.append(dict(type='RandomFlip', prob=0.5))
    return out


def lever_options(lv: Levers, img_dir: str, seed: int = 0) -> Dict:
    """``--cfg-options`` of the MoCo v2 tiny config for the levers."""
    warmup = min(max(1, lv.iters // 20), 50)
    feat = lv.width * 8  # ResNet-18's last stage: 8 x base channels
    return {
        'model.backbone.stem_channels': lv.width,
        'model.backbone.base_channels': lv.width,
        'model.neck.in_channels': feat,
        'model.neck.hid_channels': feat,
        'model.queue_len': lv.queue,
        'model.momentum': lv.momentum,
        'model.head.temperature': lv.temperature,
        'train_dataloader.dataset.data_root': img_dir,
        'train_dataloader.dataset.pipeline': [
            dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2,
                 transforms=[view_pipeline(lv)]),
            dict(type='PackInputs')],
        'train_dataloader.batch_size': lv.batch,
        'train_dataloader.num_workers': lv.workers,
        'train_dataloader.persistent_workers': lv.workers > 0,
        'optim_wrapper.optimizer.lr': lv.lr,
        'train_cfg.max_iters': lv.iters,
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=warmup),
            dict(type='CosineAnnealingLR', T_max=lv.iters - warmup,
                 by_epoch=False, begin=warmup, end=lv.iters)],
        'default_hooks.checkpoint.interval': lv.iters,
        'default_hooks.checkpoint.max_keep_ckpts': 1,
        'default_hooks.logger.interval': max(1, lv.iters // 40),
        'randomness.seed': seed,
    }


def chance_loss(queue: int) -> float:
    """InfoNCE of a model that has learnt nothing: ``ln(K + 1)``."""
    return math.log(queue + 1)


def summarise_run(run_dir: str, queue: int) -> Dict:
    """Final loss, chance, their ratio and the loss curve of a run."""
    rows = read_scalars(run_dir)
    curve = [[r['iter'], round(r['loss'], 4)] for r in rows if 'loss' in r]
    if not curve:
        raise ValueError(f'{run_dir}: no logged loss')
    final = final_losses(rows)['loss']
    chance = chance_loss(queue)
    return dict(final_loss=round(final, 4), chance=round(chance, 4),
                over_chance=round(final / chance, 4),
                learns=final <= LEARNS_BELOW * chance, loss_curve=curve)


def _check_sweep(obj, path: str) -> None:
    def bad(msg):
        raise ValueError(f'{path}: not a protocol sweep record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'points'}:
        bad('expected exactly the keys "protocol" and "points"')
    if not isinstance(obj['points'], list):
        bad('"points" must be a list')
    need = {'name', 'levers', 'final_loss', 'chance', 'over_chance'}
    for p in obj['points']:
        if not isinstance(p, dict) or not need <= set(p):
            bad(f'every point needs {", ".join(sorted(need))}')


def read_protocol_sweep(path: str) -> Dict:
    """Read and check a record of :func:`write_protocol_sweep`."""
    return read_record(path, _check_sweep)


def write_protocol_sweep(path: str, protocol: Dict,
                         points: List[Dict]) -> Dict:
    """Replace the sweep record atomically (only a record of this writer)."""
    return write_record(path, dict(protocol=protocol, points=points),
                        PROTOCOL_SWEEP_WRITER, _check_sweep,
                        what='a protocol sweep record', allow_nan=False)


def _changed(lv: Levers) -> str:
    base = asdict(Levers())
    diff = [f'{k}={v}' for k, v in asdict(lv).items() if base[k] != v]
    return ', '.join(diff) or '(tiny config)'


def _probe_cell(p: Dict, rnd: Optional[Dict]) -> str:
    probe = p.get('probe')
    if not probe or not rnd:
        return '-'
    from .sweep_probe import beats_random
    if probe.get('data_root') != rnd.get('data_root'):
        return f"{100 * probe['val_acc']:.1f} (other data)"
    mark = ' (beats random)' if beats_random(probe, rnd) else ''
    return f"{100 * probe['val_acc']:.1f}{mark}"


def protocol_sweep_table(points: Sequence[Dict],
                         random_init: Optional[Dict] = None) -> str:
    """Markdown: one row per point, its levers against the tiny config;
    with ``random_init`` (the record's ``random_init_probe``) the probe's
    val accuracy of each point, and random init's above the table."""
    lines = []
    if random_init:
        lines += [f"Probe (val split, {random_init['data_root']}): random "
                  f"init seeds {random_init['seeds'][0]}-"
                  f"{random_init['seeds'][-1]} "
                  f"{100 * random_init['mean']:.1f} +- "
                  f"{100 * random_init['sd']:.1f} %; a point beats random "
                  'init above mean + sd.', '']
    lines += [
        '| point | levers (changed from the tiny config) | final InfoNCE '
        '| chance ln(K+1) | ratio | learns | probe val % | s/iter |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for p in points:
        lines.append(
            f"| {p['name']} | {_changed(Levers(**p['levers']))} | "
            f"{p['final_loss']:.2f} | {p['chance']:.2f} | "
            f"{p['over_chance']:.2f} | {'yes' if p.get('learns') else 'no'}"
            f" | {_probe_cell(p, random_init)}"
            f" | {p.get('sec_per_iter', float('nan')):.2f} |")
    return '\n'.join(lines) + '\n'


def _plain(x):
    return json.loads(json.dumps(x))


def _digest_file(run_dir: str) -> str:
    return osp.join(run_dir, DIGEST_FILE)


def _sweep_digest() -> Optional[str]:
    """The ``config_digest`` of :data:`SWEEP_CONFIG` as the comparison's
    stage keys hold it: None while it is the content the sweep's first
    points were made with."""
    from .config_digest import with_config_digest
    return with_config_digest({}, SWEEP_CONFIG).get('config_digest')


def finished_run_seconds(run_dir: str, lv: Levers,
                         img_dir: str) -> Optional[float]:
    """Seconds of a finished run of ``lv`` in ``run_dir`` (its final
    checkpoint, its dumped config holding every option of
    :func:`lever_options`, and made with the current content of
    :data:`SWEEP_CONFIG`: its :data:`DIGEST_FILE` names it, or, for a run
    of before those files, the content is the first one), from the run's
    start stamp to the checkpoint's time; or None when there is none."""
    from mmengine.config import Config

    from .config_digest import config_digest
    ckpt = osp.join(run_dir, f'iter_{lv.iters}.pth')
    if osp.isfile(_digest_file(run_dir)):
        with open(_digest_file(run_dir)) as f:
            if f.read().strip() != config_digest(SWEEP_CONFIG):
                return None
    elif _sweep_digest() is not None:
        return None
    cfgs = glob.glob(osp.join(run_dir, '*.py'))
    stamps = sorted(d for d in (os.listdir(run_dir) if osp.isdir(run_dir)
                                else []) if re.fullmatch(r'\d{8}_\d{6}', d))
    if not osp.isfile(ckpt) or len(cfgs) != 1 or not stamps:
        return None
    cfg = _plain(Config.fromfile(cfgs[0]).to_dict())
    for key, want in lever_options(lv, img_dir, seed=lv.seed).items():
        node = cfg
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if node != _plain(want):
            return None
    start = time.mktime(time.strptime(stamps[-1], '%Y%m%d_%H%M%S'))
    return osp.getmtime(ckpt) - start


def run_protocol_sweep(points: Dict[str, Levers], work_dir: str,
                       record: str,
                       protocol: Optional[Dict] = None,
                       rerun: bool = False,
                       probe_data: Optional[str] = None) -> List[Dict]:
    """Run each point and rewrite the record and its markdown table
    (``record`` with ``.md``) after each one. A point recorded with the
    same levers and the same content of :data:`SWEEP_CONFIG` (its
    ``config_digest``, as the comparison's stage keys) is kept, and one
    whose run dir holds a finished run of both is summarised from it, not
    rerun -- unless ``rerun`` (then it
    runs again, e.g. for its checkpoint). Recorded points keep their place
    until they are replaced, so an interrupted sweep loses none.

    With ``probe_data`` (a labelled dataset of the synthetic layout) every
    point's final checkpoint is probed on its val split and random
    initialisations of the points' width once
    (:mod:`.sweep_probe`): the point's ``probe`` and the record's
    ``protocol.random_init_probe``; a point already probed on that data
    by the same probe version is not probed again.

    Raises:
        FolderInUseError: another sweep holds ``work_dir`` (the sweep owns
            it for the run: it replaces a stale point's folder there).
    """
    from ccop_plugin.utils.folder_lock import FolderLock
    with FolderLock(work_dir, what='protocol sweep work dir',
                    hint='wait for it to finish, or pass another '
                    '--work-dir'):
        return _sweep(points, work_dir, record, protocol, rerun,
                      probe_data)


def _sweep(points: Dict[str, Levers], work_dir: str, record: str,
           protocol: Optional[Dict], rerun: bool,
           probe_data: Optional[str]) -> List[Dict]:
    from ccop_plugin.datagen import generate_synthetic_coco
    from ccop_plugin.utils import get_config_path
    from ccop_plugin.utils.machine import machine_info
    from .config_digest import config_digest
    from .pretrain import pretrain
    from .sweep_probe import probe_point, probed_on
    digest = _sweep_digest()
    out: Dict[str, Dict] = {}
    old_proto: Dict = {}
    if osp.exists(record):
        rec = read_protocol_sweep(record)
        out = {p['name']: p for p in rec['points']}
        old_proto = rec['protocol']
    proto = dict(protocol or {}, config=SWEEP_CONFIG,
                 learns_below=LEARNS_BELOW,
                 final_loss='mean of the last 10 % of the logged losses',
                 machine=machine_info())
    rnd = old_proto.get('random_init_probe')
    if rnd:
        proto['random_init_probe'] = rnd
    if probe_data:
        from .sweep_probe import random_init_for
        fresh = random_init_for(points.values(), probe_data, rnd)
        if fresh is not rnd:
            proto['random_init_probe'] = fresh
            _write(record, proto, out)
    for name, lv in points.items():
        old = out.get(name)
        ckpt = osp.join(work_dir, name, f'iter_{lv.iters}.pth')
        # levers added since a point was recorded take their defaults
        if (not rerun and old is not None
                and asdict(Levers(**old['levers'])) == asdict(lv)
                and old.get('config_digest') == digest):
            # a recorded point whose checkpoint is gone stays unprobed
            # (--rerun brings it back)
            if probe_data and osp.isfile(ckpt) and not probed_on(
                    old.get('probe'), probe_data):
                old['probe'] = probe_point(ckpt, probe_data)
                _write(record, proto, out)
            continue
        data = osp.join(work_dir,
                        f'data_u{lv.num_unlabeled}_s{lv.data_seed}')
        generate_synthetic_coco(data, seed=lv.data_seed,
                                num_unlabeled=lv.num_unlabeled)
        img_dir = osp.join(osp.abspath(data), 'images', 'unlabeled') + '/'
        run_dir = osp.join(work_dir, name)
        secs = None if rerun else finished_run_seconds(run_dir, lv, img_dir)
        if secs is None:
            if osp.isdir(run_dir):  # a stale or changed point: afresh
                shutil.rmtree(run_dir)
            t0 = time.time()
            pretrain(get_config_path(SWEEP_CONFIG), run_dir,
                     lever_options(lv, img_dir, seed=lv.seed))
            secs = time.time() - t0
            atomic_write_text(_digest_file(run_dir),
                              config_digest(SWEEP_CONFIG) + '\n')
        out[name] = dict(name=name, levers=asdict(lv),
                         **({} if digest is None
                            else dict(config_digest=digest)),
                         seconds=round(secs, 1),
                         sec_per_iter=round(secs / lv.iters, 3),
                         **summarise_run(run_dir, lv.queue))
        if probe_data:
            out[name]['probe'] = probe_point(ckpt, probe_data)
        _write(record, proto, out)
    return list(out.values())


def _write(record: str, proto: Dict, out: Dict[str, Dict]) -> None:
    write_protocol_sweep(record, proto, list(out.values()))
    atomic_write_text(osp.splitext(record)[0] + '.md',
                      protocol_sweep_table(list(out.values()),
                                           proto.get('random_init_probe')))


__all__ = ['Levers', 'LEARNS_BELOW', 'chance_loss',
           'finished_run_seconds',
           'lever_options', 'protocol_sweep_table',
           'read_protocol_sweep', 'run_protocol_sweep',
           'summarise_run', 'view_pipeline', 'write_protocol_sweep']
