"""Pre-training runs of the main job: one config in mmengine's ``Runner``,
in this process, with the data, budget and seed every method shares."""
import os.path as osp
from functools import lru_cache
from typing import Dict, Optional, Tuple

from .job_config import MainJobConfig
from .methods import IMAGE_FOLDER_METHODS, pretrain_config


def pretrain(config: str, work_dir: str, cfg_options: Optional[Dict] = None,
             resume: Optional[str] = None, launcher: str = 'none') -> None:
    """Run a pre-training config in mmengine's ``Runner``, in this process.

    Args:
        config (str): Config file (e.g. from :func:`get_config_path`).
        work_dir (str): Run folder (logs, checkpoints).
        cfg_options (dict, optional): ``--cfg-options`` style overrides.
        resume (str, optional): Checkpoint to resume from.
        launcher (str): mmengine's launcher (``pytorch`` under torchrun).
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ccop_plugin.apis.finetune import unique_run_names
    from ccop_plugin.utils.default_scope import keep_default_scope
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    unique_run_names(cfg)
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    if resume is not None:
        cfg.resume, cfg.load_from = True, resume
    with keep_default_scope():  # the Runner changes the process's scope
        Runner.from_cfg(cfg).train()


@lru_cache(maxsize=None)  # packaged configs: read once per process
def config_schedule(config: str) -> Tuple[int, int, int]:
    """``(iterations, batch, warm-up iterations)`` a packaged pre-training
    config sets (warm-up: the end of its first, linear scheduler)."""
    from mmengine.config import Config

    from ccop_plugin.utils.config_path import get_config_path
    c = Config.fromfile(get_config_path(config))
    sched = c.get('param_scheduler') or []
    first = sched[0] if isinstance(sched, list) and sched else {}
    warmup = first.get('end', 0) if first.get('type') == 'LinearLR' else 0
    return (int(c.train_cfg.max_iters), int(c.train_dataloader.batch_size),
            int(warmup))


def pretrain_budget(cfg: MainJobConfig, method: str) -> Tuple[int, int]:
    """``(iterations, batch)`` of a method's pre-training: the job's under
    ``cpu-tiny``; under ``cpu-science`` the config's unless the job sets
    them."""
    if cfg.protocol == 'cpu-tiny':
        return cfg.pretrain_iters, cfg.pretrain_batch
    iters, batch, _ = config_schedule(pretrain_config(method, cfg.protocol))
    return cfg.pretrain_iters or iters, cfg.pretrain_batch or batch


def _protocol_overrides(cfg: MainJobConfig, method: str) -> Dict:
    """A science protocol config's own batch and schedule, changed only
    where the job sets them: another iteration count keeps the schedule's
    shape (warm-up the same fraction, then cosine to the end)."""
    out = {}
    if cfg.pretrain_batch:
        out['train_dataloader.batch_size'] = cfg.pretrain_batch
    if cfg.pretrain_iters:
        iters = cfg.pretrain_iters
        own, _, warm = config_schedule(pretrain_config(method, cfg.protocol))
        warmup = min(max(1, round(warm * iters / own)), max(1, iters // 2))
        out.update({
            'train_cfg.max_iters': iters,
            'param_scheduler': _warmup_cosine(iters, warmup),
            'default_hooks.checkpoint.interval': max(1, iters // 2),
            'default_hooks.logger.interval': min(10, max(1, iters // 10)),
        })
    return out


def _warmup_cosine(iters: int, warmup: int) -> list:
    return [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', T_max=iters - warmup, by_epoch=False,
             begin=warmup, end=iters),
    ]


def pretrain_options(cfg: MainJobConfig, method: str) -> Dict:
    """``--cfg-options`` of a method's pre-training: the data, the budget
    and the seed, the same for every method (under ``cpu-science`` the
    budget and schedule are the config's unless the job sets them)."""
    img_dir = osp.join(osp.abspath(cfg.data_root), 'images', 'unlabeled') + '/'
    if method not in IMAGE_FOLDER_METHODS:  # images listed with proposals
        options = {
            'train_dataloader.dataset.data_root': img_dir,
            'train_dataloader.dataset.ann_file':
            osp.abspath(cfg.proposal_file),
            'train_dataloader.dataset.data_prefix.img_path': '',
        }
    else:  # an image folder
        options = {'train_dataloader.dataset.data_root': img_dir}
    if cfg.protocol != 'cpu-tiny':
        options['randomness.seed'] = cfg.train_seed
        options.update(_protocol_overrides(cfg, method))
        return options
    # linear warm-up (at most 5 iterations, as the tiny configs), then cosine
    warmup = min(5, max(1, cfg.pretrain_iters // 2))
    options.update({
        'train_dataloader.batch_size': cfg.pretrain_batch,
        'train_cfg.max_iters': cfg.pretrain_iters,
        # one schedule for every method (the tiny PLRC / MCL configs have
        # no warm-up of their own)
        'param_scheduler': _warmup_cosine(cfg.pretrain_iters, warmup),
        'default_hooks.checkpoint.interval': max(1, cfg.pretrain_iters // 4),
        # the last two only (as the tiny CCOP / MoCo v2 configs): methods x
        # seeds runs would otherwise fill the disk
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'randomness.seed': cfg.train_seed,
    })
    if cfg.user_data:
        # loss curves in the report of a short run too
        options['default_hooks.logger.interval'] = min(
            5, max(1, cfg.pretrain_iters // 10))
        # mmengine's iteration loop sleeps 2 s at every pass over the data,
        # which a few hundred images end every few iterations
        options['train_dataloader.sampler'] = dict(type='InfiniteSampler',
                                                   shuffle=True)
    return options
