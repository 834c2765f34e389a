"""The main job's report: ``report.md`` plus PNG figures.

Statistics live in :mod:`.stats`, tables in :mod:`.tables`, figures in
:mod:`.figures` and the machine-readable record in :mod:`.science_record`;
this module puts them together in the report's sections.
"""
import os
import os.path as osp
from typing import Dict, List, Optional

from ccop_plugin.utils.fileio import atomic_write_text
from ccop_plugin.utils.machine import machine_summary
from .demo_range import expectation_lines
from .figures import (
    draw_sample_detections,
    draw_sample_proposals,
    plot_comparison,
    plot_curriculum,
    plot_losses,
)
from .methods import METHOD_NAMES, finetune_config
from .stats import read_scalars
from .tables import ap_table, comparison_table, per_category_table


def _data_line(cfg, d: Dict) -> str:
    if not cfg.user_data:
        return (f"Splits: {d['splits']} images of {cfg.img_size} px "
                f'(seed {cfg.seed}).')
    skipped = d.get('skipped') or []
    return (f"Your data: {d['splits']} images; {len(d['classes'])} "
            f"categories ({', '.join(d['classes'])}) from "
            f'`{cfg.train_ann}`; image scale {d["img_scale"]} px (longer '
            'side; unlabeled images stored at most that size); '
            + ('masks in every annotation: Mask R-CNN.' if d['masks'] else
               'boxes only: Faster R-CNN (bbox AP only).')
            + (f' Unlabeled images not decodable, skipped: '
               f"{', '.join(skipped)}." if skipped else ''))


def _data_section(cfg, results: Dict, fig_dir: str) -> List[str]:
    d = results['data']
    p = results['proposals']
    lines = ['## Data and proposals', '',
             _data_line(cfg, d) + ' Selective search: '
             f"{p.get('proposals_per_image', 0):.1f} proposals per image, "
             f"{p.get('failed', 0)} failures, "
             f"{p.get('images_per_s', 0):.1f} images/s with "
             f"{p.get('workers', '?')} workers.", '']
    if draw_sample_proposals(
            p['proposal_file'], osp.join(cfg.data_root, 'images',
                                         'unlabeled'),
            osp.join(fig_dir, 'proposals.png')):
        lines += ['![sample proposals](figures/proposals.png)', '']
    return lines


def _pretrain_section(results: Dict, fig_dir: str) -> List[str]:
    pre = (results.get('ccop') or {}).get('pretrain')
    if not pre:
        return []
    rows = read_scalars(osp.dirname(pre['checkpoint']))
    lines = ['## CCOP pre-training', '',
             f"{pre['iters']} iterations of batch {pre['batch']} with "
             f"`{pre['config']}`, {pre['seconds']:.0f} s.", '']
    if plot_losses(rows, osp.join(fig_dir, 'pretrain_losses.png')):
        lines += ['![losses](figures/pretrain_losses.png)', '']
    if plot_curriculum(rows, osp.join(fig_dir, 'curriculum.png')):
        lines += ['![curriculum](figures/curriculum.png)', '']
    return lines


def _comparison_section(cfg, comparison: Optional[Dict],
                        fig_dir: str) -> List[str]:
    if not comparison:
        return []
    seeds = comparison['seeds']
    split = comparison.get('split', 'test')
    data = ('Same data (seed %d) for every method and seed' % cfg.seed
            if not isinstance(seeds[0], tuple) else
            'Runs are (data seed, run seed): each data seed has its own '
            'data and proposals, the same for every method')
    lines = [f'## Comparison over {len(seeds)} seed(s) (test figures: '
             f'{split} split)', '',
             f'{data}; each run '
             'seed seeds pre-training, fine-tuning and the probe. The '
             'machine-readable record is `science.json` '
             '(`tools/compare_pretraining.py --record`).', '',
             comparison_table(comparison['values'], seeds, split)]
    lines += comparison.get('extras', [])
    if plot_comparison(comparison['values'],
                       osp.join(fig_dir, 'comparison.png'),
                       title=f'mean ± std over {len(seeds)} seed(s)'):
        lines += ['![comparison](figures/comparison.png)', '']
    return lines


def _detections_section(cfg, results: Dict, method: str,
                        fig_dir: str) -> List[str]:
    ft = results[method]['finetune']
    if not ft.get('checkpoint'):
        return []
    from .stages import detector_config
    try:
        fig = draw_sample_detections(
            detector_config(cfg), ft['checkpoint'],
            cfg.data_root, osp.join(fig_dir, 'detections.png'))
    except Exception as e:  # the report must not lose the AP table
        return [f'(sample detections not drawn: {e})', '']
    if not fig:
        return []
    return [f'Sample detections ({METHOD_NAMES.get(method, method)}, '
            'score > 0.3):', '', '![detections](figures/detections.png)', '']


def _stage_records(cfg, results: Dict, methods: List[str],
                   comparison: Optional[Dict]) -> List[tuple]:
    """``(label, stage record)`` of every stage of the report."""
    out = [(name, results[name]) for name in ('data', 'proposals')]
    runs = (comparison or {}).get('runs') or {
        m: {cfg.seed: results[m]} for m in methods}
    for m in methods:
        for seed, res in runs[m].items():
            for st, r in res.items():
                out.append((f'{st} {m}' + ('' if seed == cfg.seed else
                                           f' seed {seed}'), r))
    return out


def _machine_section(cfg, results: Dict, methods: List[str],
                     comparison: Optional[Dict]) -> List[str]:
    """The machine of this report and of each stage's computation: the AP
    of a run depends on the processor's kernels (docs/reproducibility.md)."""
    here = machine_summary()
    lines = ['## Machine', '', f'This report: {here}.', '']
    made = {}
    for label, r in _stage_records(cfg, results, methods, comparison):
        if isinstance(r, dict) and 'seconds' in r:
            made.setdefault(r.get('machine') or 'not recorded (computed '
                            'before stages recorded their machine)',
                            []).append(label)
    if list(made) == [here]:  # the usual case: no need to repeat the line
        return lines[:-1] + ['Every stage below was computed on this '
                             'machine.', '']
    for machine, labels in made.items():
        lines += [f"Computed on {machine}: {', '.join(labels)}.", '']
    return lines


def _stages_section(cfg, results: Dict, methods: List[str],
                    comparison: Optional[Dict]) -> List[str]:
    lines = ['## Stages', '',
             'Each stage is keyed on its settings and on the stages it '
             'reads; a stage made with other settings is recomputed, never '
             'reused (`run`). Seconds are those of the run that made the '
             'result.', '',
             '| stage | seconds | run | key |', '| --- | --- | --- | --- |']

    def row(label, r):
        return (f"| {label} | {r.get('seconds', 0):.0f} | "
                f"{r.get('run', '-')} | `{r.get('key', '-')}` |")

    for label, r in _stage_records(cfg, results, methods, comparison):
        lines.append(row(label, r))
    return lines


def _finetune_section(cfg, results: Dict, methods: List[str]) -> List[str]:
    metrics = {m: results[m]['finetune']['metrics'] for m in methods}
    if not cfg.user_data:
        return ['## Mask R-CNN fine-tuning (COCO AP on the synthetic val '
                'split)', '', f'Config `{finetune_config(cfg.protocol)}`, '
                f'{cfg.finetune_epochs} epochs, same seed for every method.',
                '', ap_table(metrics)]
    from .user_data import per_class_ap
    det = 'Mask R-CNN' if results['data']['masks'] else \
        'Faster R-CNN (boxes only)'
    lines = [f'## {det} fine-tuning (COCO AP on your val split)', '',
             f'Config `{finetune_config(cfg.protocol)}` with your classes'
             + ('' if results['data']['masks'] else ', without its mask '
                'head') + f', image scale {cfg.img_scale} px, '
             f'{cfg.finetune_epochs} epochs, same seed for every method.',
             '', ap_table(metrics)]
    per = {m: per_class_ap(v) for m, v in metrics.items()}
    table = per_category_table(per)
    if table:
        lines += ['Per category: bbox AP (x100; - where the val split has '
                  'no object of it).', '', table]
    if cfg.has_test:
        lines += [f'Held-out test split (`{cfg.test_ann}`):', '',
                  ap_table({m: results[m]['test']['metrics']
                            for m in methods})]
    return lines


def write_report(cfg, results: Dict, methods: List[str],
                 comparison: Optional[Dict] = None) -> str:
    """Write ``<work_dir>/report.md`` and its figures; return its path."""
    fig_dir = osp.join(cfg.work_dir, 'figures')
    os.makedirs(fig_dir, exist_ok=True)
    lines = ['# ccop_plugin main job report', '',
             'Synthetic COCO-style data -> selective-search proposals -> '
             'pre-training -> conversion -> Mask R-CNN fine-tuning -> COCO '
             'evaluation. Rerun with the same command: finished stages are '
             'reused.', '']
    if cfg.user_data:
        lines[2] = lines[2].replace('Synthetic COCO-style data',
                                    'Your images and COCO labels')
    lines += _data_section(cfg, results, fig_dir)
    lines += _pretrain_section(results, fig_dir)
    lines += _finetune_section(cfg, results, methods)
    if not comparison and 'ccop' in methods and not cfg.user_data:
        lines += expectation_lines(cfg, results['ccop']['finetune']
                                   ['metrics'])
    lines += _comparison_section(cfg, comparison, fig_dir)
    lines += _detections_section(cfg, results, methods[0], fig_dir)
    lines += _machine_section(cfg, results, methods, comparison)
    lines += _stages_section(cfg, results, methods, comparison)
    path = osp.join(cfg.work_dir, 'report.md')
    atomic_write_text(path, '\n'.join(lines) + '\n')
    return path
