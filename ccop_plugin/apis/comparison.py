"""The comparison: every method, every run seed, the same data and budget.

:func:`run_comparison` runs the main job's stages
(:func:`ccop_plugin.apis.main_job.run_method`) for each method of
:data:`~ccop_plugin.apis.methods.METHODS` and each run seed, and writes a
mean +- std table, a plot with error bars and the machine-readable record
(:func:`ccop_plugin.apis.report.write_science_record`).
"""
import os.path as osp
import time
from dataclasses import asdict
from typing import Dict, List, Optional, Sequence

from ccop_plugin.utils.fileio import atomic_write_text
from ccop_plugin.utils.machine import machine_info
from .job_config import MainJobConfig, log
from .main_job import (
    claim_outputs,
    job_lock,
    prepare_data,
    record_outputs,
    run_method,
)
from .methods import (
    DEFAULT_METHODS,
    FINETUNE_CONFIG,
    METHODS,
    PRETRAIN_CONFIGS,
)
from .report import write_report
from .science_record import (
    OVER_CHANCE_KEYS,
    check_record_path,
    pretrain_over_chance,
    write_science_record,
)
from .stages import Probe, probe_name
from .stats import compute_seconds
from .tables import comparison_table, paired_table, pretrain_loss_table


def comparison_seeds(cfg: MainJobConfig, num_seeds: int) -> List[int]:
    """``num_seeds`` run seeds: ``seed``, ``seed + 1``, ..."""
    if num_seeds < 1:
        raise ValueError(f'--seeds must be >= 1, got {num_seeds}')
    return [cfg.seed + i for i in range(num_seeds)]


def check_methods(methods: Sequence[str]) -> List[str]:
    """The methods, checked (known, no repeats)."""
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f'unknown method(s) {", ".join(unknown)}; known: '
                         f'{", ".join(METHODS)}')
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f'methods must be given once each, got {methods}')
    return methods


def comparison_protocol(cfg: MainJobConfig, methods: Sequence[str],
                        seeds: Sequence[int],
                        command: Optional[str] = None,
                        probe: Optional[Probe] = None) -> Dict:
    """Every setting that defines a comparison run (the record's
    ``protocol``; ``command``: the command line that ran it, if any;
    ``probe``: the probe it measured, if any)."""
    probe = probe_name(probe) if probe is not None else 'no probe'
    settings = asdict(cfg)
    settings.pop('run_seed')
    if settings['base_channels'] is None:  # absent: earlier records match
        settings.pop('base_channels')
    return dict(
        command=command,
        settings=settings,
        methods=list(methods),
        seeds=list(seeds),
        data_seed=cfg.seed,
        seed_scope=('each run seed seeds pre-training, fine-tuning and the '
                    'probe (data order, initialisation, augmentation); the '
                    'data and proposals are those of data_seed for every '
                    'method and seed'),
        data=dict(num_unlabeled=cfg.num_unlabeled, num_train=cfg.num_train,
                  num_val=cfg.num_val, num_test=cfg.num_test,
                  img_size=cfg.img_size),
        pretrain=dict(
            iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
            schedule='linear warm-up (min(5, iters // 2) iterations) then '
            'cosine, the same for every method',
            configs={m: PRETRAIN_CONFIGS.get(m) for m in methods}),
        finetune=dict(config=FINETUNE_CONFIG, epochs=cfg.finetune_epochs,
                      with_fpn=cfg.with_fpn,
                      model_selection='none (the last epoch)'),
        evaluation=dict(
            split=cfg.eval_split,
            selection_split='val',
            bbox_ap='COCO bbox mAP (fraction) of the fine-tuned Mask R-CNN '
            f'on the {cfg.eval_split} split',
            segm_ap=f'COCO segm mAP (fraction) on the {cfg.eval_split} split',
            probe_acc=f'{probe} accuracy (fraction; fit on the '
            f'train split, scored on the {cfg.eval_split} split); null when '
            'not measured'),
        machine=machine_info())


def collect_results(runs: Dict[str, Dict[int, Dict]], methods: Sequence[str],
                    seeds: Sequence[int]) -> Dict[str, Dict[str, List]]:
    """``{method: {probe_acc, bbox_ap, segm_ap: [one value per seed]}}``
    from :func:`run_method`'s records (test split when there is one), and
    for pre-trained methods each final loss over its chance level
    (:func:`~ccop_plugin.apis.science_record.pretrain_over_chance`)."""
    out = {}
    for m in methods:
        vals = dict(probe_acc=[], bbox_ap=[], segm_ap=[])
        for s in seeds:
            r = runs[m][s]
            metrics = (r.get('test') or r['finetune'])['metrics']
            vals['bbox_ap'].append(metrics.get('coco/bbox_mAP'))
            vals['segm_ap'].append(metrics.get('coco/segm_mAP'))
            vals['probe_acc'].append((r.get('probe') or {}).get('acc'))
        ratios = [pretrain_over_chance(runs[m][s].get('pretrain'))
                  for s in seeds]
        for k in OVER_CHANCE_KEYS:  # null for a seed without the loss
            if any(k in r for r in ratios):
                vals[k] = [r.get(k) for r in ratios]
        out[m] = vals
    return out


def run_comparison(cfg: MainJobConfig,
                   methods: Sequence[str] = DEFAULT_METHODS,
                   seeds: Optional[Sequence[int]] = None,
                   record: Optional[str] = None,
                   probe: Optional[Probe] = None,
                   command: Optional[str] = None) -> Dict:
    """Every method with every run seed on the same data and budget.

    Writes ``<work_dir>/comparison.md`` (mean +- std per method and the
    values of each seed), the report with a plot with error bars, and the
    record (:func:`ccop_plugin.apis.report.write_science_record`) at
    ``record`` (default ``<work_dir>/science.json``).

    Holds the work dir's lock for the whole run and replaces only report
    files it wrote (:func:`ccop_plugin.apis.main_job.claim_outputs`).

    Args:
        cfg: Settings; ``cfg.seed`` makes the data, used by every run.
        methods: Keys of :data:`METHODS`.
        seeds: Run seeds; default ``[cfg.seed]``.
        record: Path of the record.
        probe: Also measure this probe's accuracy (e.g.
            :func:`ccop_plugin.evaluation.linear_probe.linear_probe`);
            None: ``probe_acc`` is null.
        command: The command line that ran the comparison (recorded in the
            record's ``protocol.command``).

    Returns:
        dict: ``data``, ``proposals``, ``runs`` (method -> seed -> stage
        records), ``values`` (the record's results), ``record`` (its path),
        and per method the records of the first seed.
    """
    methods = check_methods(methods)
    seeds = [cfg.seed] if seeds is None else [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds must be distinct and at least one, got '
                         f'{seeds}')
    record = record or osp.join(cfg.work_dir, 'science.json')
    check_record_path(record)  # before hours of work, not after
    with job_lock(cfg.work_dir):
        outputs = claim_outputs(cfg.work_dir)
        results = _compare(cfg, methods, seeds, record, probe, command)
        record_outputs(outputs)
    return results


def _compare(cfg: MainJobConfig, methods: List[str], seeds: List[int],
             record: str, probe: Optional[Probe],
             command: Optional[str]) -> Dict:
    t0 = time.time()
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    results = prepare_data(cfg)
    runs: Dict[str, Dict[int, Dict]] = {m: {} for m in methods}
    for s in seeds:  # every method once per seed: a partial run is balanced
        for m in methods:
            log(f'comparison: {m}, seed {s}')
            runs[m][s] = run_method(cfg, m, results, seed=s, probe=probe)
    for m in methods:
        results[m] = runs[m][seeds[0]]
    values = collect_results(runs, methods, seeds)
    protocol = comparison_protocol(cfg, methods, seeds, command, probe)
    protocol.update(started_utc=started,
                    seconds=round(time.time() - t0, 1),
                    compute_seconds=compute_seconds(results, runs))
    table = comparison_table(values, seeds, split=cfg.eval_split)
    # read once (the loss table reads every run's scalars), shown twice
    extras = [t for t in (paired_table(values),
                          pretrain_loss_table(runs, methods, seeds)) if t]
    for extra in extras:
        table += '\n' + extra
    atomic_write_text(osp.join(cfg.work_dir, 'comparison.md'), table)
    write_science_record(record, protocol, values)
    results.update(runs=runs, values=values, record=record)
    write_report(cfg, results, list(methods), comparison=dict(
        values=values, seeds=seeds, runs=runs, split=cfg.eval_split,
        extras=extras))
    print(table)
    log(f'comparison done in {time.time() - t0:.0f} s; record: {record}')
    return results
