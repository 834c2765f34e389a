"""The comparison: every method, every run seed, the same data and budget.

:func:`run_comparison` runs the main job's stages
(:func:`ccop_plugin.apis.main_job.run_method`) for each method of
:data:`~ccop_plugin.apis.methods.METHODS` and each run seed, and writes a
mean +- std table, a plot with error bars and the machine-readable record
(:func:`ccop_plugin.apis.report.write_science_record`).

With ``data_seeds`` every run seed runs on each data seed's own data and
proposals: the first data seed's stages live in the work dir (the layout of
a single-data-seed comparison), each other's in ``<work_dir>/data_seed<d>/``.
"""
import os.path as osp
import time
from dataclasses import asdict, replace
from typing import Callable, Dict, List, Optional, Sequence, Union

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
    METHODS,
    finetune_config,
    pretrain_config,
    protocol_methods,
)
from .pretrain import pretrain_budget
from .report import write_report
from .science_record import (
    OVER_CHANCE_KEYS,
    check_record_path,
    pretrain_over_chance,
    write_science_record,
)
from .stage import run_step
from .stages import Probe, SupervisedStep, probe_name
from .stats import compute_seconds
from .tables import (
    comparison_table,
    difference_tables,
    pretrain_loss_table,
    supervised_line,
)


def comparison_seeds(cfg: MainJobConfig, num_seeds: int,
                     first: Optional[int] = None) -> List[int]:
    """``num_seeds`` run seeds: ``first``, ``first + 1``, ... (default
    ``first``: ``cfg.seed``)."""
    if num_seeds < 1:
        raise ValueError(f'--seeds must be >= 1, got {num_seeds}')
    first = cfg.seed if first is None else first
    if first < 0:
        raise ValueError(f'--first-run-seed must be >= 0, got {first}')
    return [first + i for i in range(num_seeds)]


def check_methods(methods: Sequence[str],
                  protocol: Optional[str] = None) -> List[str]:
    """The methods, checked (known to ``protocol``, default every method;
    no repeats)."""
    methods = list(methods)
    known = METHODS if protocol is None else protocol_methods(protocol)
    unknown = [m for m in methods if m not in known]
    if unknown:
        where = '' if protocol is None else f' for the protocol {protocol}'
        raise ValueError(f'unknown method(s) {", ".join(unknown)}{where}; '
                         f'known: {", ".join(known)}')
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f'methods must be given once each, got {methods}')
    return methods


#: A run's key in ``runs``: the run seed, or ``(data seed, run seed)``
#: when the comparison has data seeds.
RunKey = Union[int, tuple]


def run_keys(seeds: Sequence[int],
             data_seeds: Optional[Sequence[int]] = None) -> List[RunKey]:
    """The runs of a comparison in the record's order: the run seeds, or
    every ``(data seed, run seed)``, data seed first."""
    if data_seeds is None:
        return list(seeds)
    return [(d, s) for d in data_seeds for s in seeds]


def data_seed_config(cfg: MainJobConfig, data_seed: int) -> MainJobConfig:
    """The settings of one data seed: the work dir itself for ``cfg.seed``,
    else ``<work_dir>/data_seed<d>/`` (its own data and proposals)."""
    if data_seed == cfg.seed:
        return cfg
    return replace(cfg, seed=data_seed, run_seed=None,
                   work_dir=osp.join(cfg.work_dir, f'data_seed{data_seed}'))


def _pretrain_protocol(cfg: MainJobConfig, methods: Sequence[str]) -> Dict:
    pre = [m for m in methods if m != 'none']
    configs = {m: pretrain_config(m, cfg.protocol) for m in methods}
    if cfg.protocol == 'cpu-tiny':
        return dict(
            iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
            schedule='linear warm-up (min(5, iters // 2) iterations) then '
            'cosine, the same for every method', configs=configs)
    budget = {m: pretrain_budget(cfg, m) for m in pre}
    first = budget[pre[0]] if pre else (None, None)
    return dict(
        iters=first[0], batch=first[1],
        per_method={m: dict(iters=i, batch=b)
                    for m, (i, b) in budget.items()},
        schedule="the configs' own (linear warm-up, then cosine); "
        + ('the configs\' iterations' if not cfg.pretrain_iters else
           f'rescaled to {cfg.pretrain_iters} iterations (same warm-up '
           'fraction)') + ('' if not cfg.pretrain_batch else
                           f', batch {cfg.pretrain_batch}'),
        configs=configs)


def comparison_protocol(cfg: MainJobConfig, methods: Sequence[str],
                        seeds: Sequence[int],
                        command: Optional[str] = None,
                        probe: Optional[Probe] = None,
                        data_seeds: Optional[Sequence[int]] = None,
                        supervised: Optional[Callable] = None) -> Dict:
    """Every setting that defines a comparison run (the record's
    ``protocol``; ``command``: the command line that ran it, if any;
    ``probe``: the probe it measured, if any; ``data_seeds``: the data
    seeds, if the comparison loops over them; ``supervised``: the probe's
    positive control, if run)."""
    probe = probe_name(probe) if probe is not None else 'no probe'
    settings = asdict(cfg)
    settings.pop('run_seed')
    if settings['base_channels'] is None:  # absent: earlier records match
        settings.pop('base_channels')
    out = dict(
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
        pretrain=_pretrain_protocol(cfg, methods),
        finetune=dict(config=finetune_config(cfg.protocol),
                      epochs=cfg.finetune_epochs, with_fpn=cfg.with_fpn,
                      model_selection='none (the last epoch)',
                      **({'train_images': cfg.finetune_images}
                         if cfg.finetune_images else {})),
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
    if cfg.protocol != 'cpu-tiny':  # absent: the records before it
        out['protocol'] = cfg.protocol
    if data_seeds is not None:
        out['data_seeds'] = list(data_seeds)
        out['seed_scope'] = (
            'each data seed makes its own data and proposals; each run seed '
            'seeds pre-training, fine-tuning and the probe on every data '
            'seed; values: one per (data seed, run seed), data seed first')
    if supervised is not None:
        out['evaluation']['supervised_probe_acc'] = (
            f'{probe_name(supervised)}: the same ResNet trained with the '
            'train split\'s labels, probed like every method (positive '
            'control), one value per run')
    return out


def collect_results(runs: Dict[str, Dict[RunKey, Dict]],
                    methods: Sequence[str],
                    seeds: Sequence[RunKey]) -> Dict[str, Dict[str, List]]:
    """``{method: {probe_acc, bbox_ap, segm_ap: [one value per run]}}``
    from :func:`run_method`'s records (test split when there is one), and
    for pre-trained methods each final loss over its chance level
    (:func:`~ccop_plugin.apis.science_record.pretrain_over_chance`);
    ``seeds``: the runs' keys in the record's order (:func:`run_keys`)."""
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
                   command: Optional[str] = None,
                   data_seeds: Optional[Sequence[int]] = None,
                   supervised: Optional[Callable] = None,
                   supervised_steps: Optional[int] = None) -> Dict:
    """Every method with every run seed on the same data and budget.

    Writes ``<work_dir>/comparison.md`` (mean +- std per method and the
    values of each seed), the report with a plot with error bars, and the
    record (:func:`ccop_plugin.apis.report.write_science_record`) at
    ``record`` (default ``<work_dir>/science.json``).

    Holds the work dir's lock for the whole run and replaces only report
    files it wrote (:func:`ccop_plugin.apis.main_job.claim_outputs`).

    Args:
        cfg: Settings; ``cfg.seed`` makes the data, used by every run
            (the first data seed when ``data_seeds`` is given);
            ``cfg.protocol`` picks the configs.
        methods: Keys of :data:`METHODS` (those of the protocol).
        seeds: Run seeds; default ``[cfg.seed]``.
        record: Path of the record.
        probe: Also measure this probe's accuracy (e.g.
            :func:`ccop_plugin.evaluation.linear_probe.linear_probe`);
            None: ``probe_acc`` is null.
        command: The command line that ran the comparison (recorded in the
            record's ``protocol.command``).
        data_seeds: Data seeds, each with its own data and proposals
            (:func:`data_seed_config`); every run seed runs on each.
            None: the one data seed ``cfg.seed`` (no ``protocol.data_seeds``
            in the record).
        supervised: The probe's positive control
            (:func:`ccop_plugin.evaluation.supervised_probe` or a callable
            with its arguments), run once per run; its accuracies are the
            record's ``results.supervised.probe_acc``.
        supervised_steps: Its training steps (None: its default).

    Returns:
        dict: ``data``, ``proposals``, ``runs`` (method -> run key -> stage
        records; run keys: :func:`run_keys`), ``values`` (the record's
        results), ``record`` (its path), ``supervised`` (its stage records
        per run key, if run), and per method the records of the first run.
    """
    methods = check_methods(methods, cfg.protocol)
    seeds = [cfg.seed] if seeds is None else [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds must be distinct and at least one, got '
                         f'{seeds}')
    if data_seeds is not None:
        data_seeds = [int(d) for d in data_seeds]
        if not data_seeds or len(set(data_seeds)) != len(data_seeds):
            raise ValueError(f'data seeds must be distinct and at least '
                             f'one, got {data_seeds}')
        cfg = replace(cfg, seed=data_seeds[0])
    record = record or osp.join(cfg.work_dir, 'science.json')
    check_record_path(record)  # before hours of work, not after
    with job_lock(cfg.work_dir):
        outputs = claim_outputs(cfg.work_dir)
        results = _compare(cfg, methods, seeds, record, probe, command,
                           data_seeds, supervised, supervised_steps)
        record_outputs(outputs)
    return results


def _compare(cfg: MainJobConfig, methods: List[str], seeds: List[int],
             record: str, probe: Optional[Probe], command: Optional[str],
             data_seeds: Optional[List[int]],
             supervised: Optional[Callable],
             supervised_steps: Optional[int] = None) -> Dict:
    t0 = time.time()
    started = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
    cfgs = {d: data_seed_config(cfg, d) for d in (data_seeds or [cfg.seed])}
    data = {d: prepare_data(c) for d, c in cfgs.items()}
    keys = run_keys(seeds, data_seeds)
    runs: Dict[str, Dict[RunKey, Dict]] = {m: {} for m in methods}
    sup: Dict[RunKey, Dict] = {}
    for s in seeds:  # every method once per seed: a partial run is balanced
        for d, c in cfgs.items():
            key = s if data_seeds is None else (d, s)
            for m in methods:
                log(f'comparison: {m}, seed {s}'
                    + ('' if data_seeds is None else f', data seed {d}'))
                runs[m][key] = run_method(c, m, data[d], seed=s, probe=probe)
            if supervised is not None:
                step = SupervisedStep(replace(c, run_seed=s), supervised,
                                      supervised_steps)
                sup[key] = run_step(c.work_dir, step, [data[d]['data']])
    results = data[cfg.seed]
    for m in methods:
        results[m] = runs[m][keys[0]]
    values = collect_results(runs, methods, keys)
    protocol = comparison_protocol(cfg, methods, seeds, command, probe,
                                   data_seeds, supervised)
    others = [r for d, r in data.items() if d != cfg.seed]
    protocol.update(started_utc=started,
                    seconds=round(time.time() - t0, 1),
                    compute_seconds=round(
                        compute_seconds(results, runs)
                        + sum(compute_seconds(r, {}) for r in others)
                        + sum(r.get('seconds', 0) for r in sup.values()), 1))
    sup_acc = [sup[k]['acc'] for k in keys] if supervised else None
    table = comparison_table(values, keys, split=cfg.eval_split)
    # read once (the loss table reads every run's scalars), shown twice
    extras = [t for t in (*difference_tables(values, sup_acc),
                          pretrain_loss_table(runs, methods, keys),
                          supervised_line(sup_acc)) if t]
    for extra in extras:
        table += '\n' + extra
    atomic_write_text(osp.join(cfg.work_dir, 'comparison.md'), table)
    write_science_record(record, protocol, values, supervised=sup_acc)
    results.update(runs=runs, values=values, record=record)
    if supervised is not None:
        results['supervised'] = sup
    write_report(cfg, results, list(methods), comparison=dict(
        values=values, seeds=keys, runs=runs, split=cfg.eval_split,
        extras=extras))
    print(table)
    log(f'comparison done in {time.time() - t0:.0f} s; record: {record}')
    return results
