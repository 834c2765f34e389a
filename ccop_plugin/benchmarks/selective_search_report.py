"""The selective-search benchmark's tables, report and record.

:func:`report` prints the results table and writes ``--out-md``;
:func:`sweep` times ``--sweep-workers`` and appends its table;
:func:`record` writes the ``selective_search`` section of ``--record``.
Each reads the :class:`~.selective_search_runs.Bench` that
:func:`~.selective_search_runs.measure` filled.
"""
import os
import os.path as osp
import platform

import numpy as np

from ..utils.fileio import atomic_write_text
from ..utils.machine import machine_summary
from ..utils.performance_record import (
    cpu_device_name,
    load_note,
    update_performance_record,
)
from .selective_search_runs import (
    Bench,
    area,
    recall,
    time_tool,
    two_core_run,
)

__all__ = ['cpu_name', 'report', 'sweep', 'record']


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def _table_row(b: Bench, row: dict, full_cands, full_final) -> str:
    args, n = b.args, len(b.entries)
    res = row['res']
    cands = [b.filtered(r['candidates']) for r in res]
    final = [r['boxes'] for r in res]
    if 'max_size' in row:
        rc, n_rc = recall(full_cands, cands, args.large_area, args.iou)
        rf, n_rf = recall(full_final, final, args.large_area, args.iou)
        rc_s = f'{100 * rc:.1f}% (of {n_rc})'
        rf_s = f'{100 * rf:.1f}% (of {n_rf})'
    else:
        rc_s = rf_s = '100% (reference)'
    n_large = np.mean([(area(x) > args.large_area).sum() for x in final])
    if b.gt_boxes is not None:
        roc, n_ro = recall(b.gt_boxes, cands, args.large_area, args.iou)
        ro, n_ro = recall(b.gt_boxes, final, args.large_area, args.iou)
        ro_s = f'{100 * roc:.1f}% / {100 * ro:.1f}% (of {n_ro})'
    else:
        ro_s = 'n/a'
    return (f'| {row["setting"]} | {n / row["loop"]:.2f} img/s '
            f'({row["loop"] / n:.2f} s/img) | {n / row["tool"]:.2f} img/s '
            f'({row["worker_s"]:.2f}) | '
            f'**{row["loop"] / row["tool"]:.2f}x** | '
            f'{100 * n * row["worker_s"] / (b.workers * row["tool"]):.0f}% | '
            f'{b.t_loop / row["loop"]:.2f}x | '
            f'{np.mean([r["num_candidates"] for r in res]):.0f} | {rc_s} | '
            f'{rf_s} | {n_large:.1f} | {ro_s} |')


def _results_table(b: Bench) -> str:
    full_cands = [b.filtered(r['candidates']) for r in b.res_full]
    full_final = [r['boxes'] for r in b.res_full]
    lines = [
        '| setting | plain loop (1 process) | tool, '
        f'{b.workers} workers (s/img inside a worker) | tool speed-up '
        'vs loop | parallel efficiency | speed-up vs '
        'full-res loop | candidates / img | candidate recall of '
        'large boxes | final recall of large boxes | large boxes / '
        'img in final | object recall (candidates / final) |',
        '|---|---|---|---|---|---|---|---|---|---|---|']
    lines += [_table_row(b, row, full_cands, full_final) for row in b.rows]
    return '\n'.join(lines)


def report(b: Bench) -> None:
    """Print the table, the NMS line and the identity check; write
    ``--out-md``."""
    args, n = b.args, len(b.entries)
    table = _results_table(b)
    load1 = os.getloadavg()
    n_filt = np.mean([len(b.filtered(r['candidates'])) for r in b.res_full])
    b.nms_line = (
        f'NMS step (filtered full-res candidates, {n_filt:.0f} boxes '
        f'per image on average): torchvision.ops.nms '
        f'{1000 * b.t_tv / n:.2f} ms/img, Python greedy loop '
        f'{1000 * b.t_py / n:.2f} ms/img '
        f'({b.t_py / max(b.t_tv, 1e-9):.0f}x); same kept boxes: '
        f'{b.nms_agree}')
    identical_all = all(r['identical'] for r in b.rows)
    env = (f'{cpu_name()}, {len(os.sched_getaffinity(0))} cores available; '
           f'load average {b.load0[0]:.2f} before, {load1[0]:.2f} after; '
           f'Python {platform.python_version()}')
    print(table)
    print(b.nms_line)
    print(f'tool output identical to the plain loop: {identical_all}')
    if args.out_md:
        b.md = '\n'.join(_markdown(b, table, env, identical_all))
        os.makedirs(osp.dirname(osp.abspath(args.out_md)), exist_ok=True)
        atomic_write_text(args.out_md, b.md)
        print(f'wrote {args.out_md}')


def _markdown(b: Bench, table: str, env: str, identical_all: bool) -> list:
    """The lines of the ``--out-md`` report."""
    args = b.args
    note = load_note(b.load0[0])
    return [
        '# Selective-search proposals: benchmark', '',
        'Command:', '', '```', b.cmd, '```', '',
        f'Images: {b.source}. Selective search mode `{args.mode}`, CCOP '
        'filters (aspect in (1/3, 3), sqrt(wh) > 20 px, random-score NMS '
        'at IoU 0.5, top 50).', '',
        f'Machine: {env}.', '',
        *([note, ''] if note else []),
        table, '',
        '* *plain loop*: one process, `read_image` + `propose` per image '
        '(what the reference script does per worker).',
        '* *tool*: `run_proposals` (= `tools/selective_search.py`) from '
        'start to the final JSON: worker pool start, per-image JSON-lines '
        'writes and the merge included. Not included: the one-time start '
        'of the workers\' fork server (a fresh interpreter importing the '
        f'package, {b.t_start:.1f} s here), which the CLI overlaps with its '
        'own start-up. The tool\'s output is checked to be the same as '
        f'the loop\'s: **{identical_all}**.',
        '* *parallel efficiency*: time the workers spent searching '
        '(sum of per-image times) / (workers x tool wall time); what is '
        'missing is pool start, the tail of the last images and the '
        'merge. Concurrent searches also slow each other (compare s/img '
        'inside a worker with the loop\'s s/img).',
        '* *speed-up vs full-res loop*: plain-loop time at full '
        'resolution / plain-loop time of the row (single process).',
        '* *candidate recall of large boxes*: full-resolution candidates '
        'that pass the geometric filters and have area > '
        f'{args.large_area:g} px^2 (96^2), matched at IoU >= {args.iou} '
        'by a scaled-down candidate passing the same filters (boxes '
        'mapped back to full-resolution pixels); pooled over images. NMS '
        'and top-50 are excluded here because they keep a random subset.',
        '* *final recall of large boxes*: the same between the two final '
        'outputs (after NMS and top-50, both random subsets).',
        '* *large boxes / img in final*: final proposals per image with '
        f'area > {args.large_area:g} px^2 (of at most 50).',
        '* `--scale-k 0`: the graph-segmentation k is not scaled with the '
        'image (default: k is multiplied by the pixel ratio).',
        '* *object recall*: visible extent of the drawn shapes (area > '
        f'{args.large_area:g} px^2) covered by a filtered candidate / a '
        f'final proposal at IoU >= '
        f'{args.iou} (generated scenes only).', '',
        b.nms_line + '.', '',
    ]


def sweep(b: Bench) -> None:
    """``--sweep-workers``: the tool's full-resolution wall time per worker
    count, printed and appended to ``--out-md``."""
    args, n = b.args, len(b.entries)
    if not args.sweep_workers:
        return
    cores = len(os.sched_getaffinity(0))
    counts = sorted({w for w in args.sweep_workers if w <= cores})
    skipped = sorted({w for w in args.sweep_workers if w > cores})
    times = {}
    for w in counts:
        times[w], _, _ = time_tool(b.img_dir, b.entries, b.cfg_full, w,
                                   b.tmp, f'sweep{w}')
    b.sweep = {str(w): times[1] / times[w] for w in counts}
    sweep_md = ['', f'Worker sweep at full resolution ({n} images, '
                'tool wall time, speed-up over 1 worker'
                + (f'; skipped {skipped}: only {cores} cores' if skipped
                   else '') + '):', '',
                '| workers | ' + ' | '.join(map(str, counts)) + ' |',
                '|---|' + '---|' * len(counts),
                '| img/s | ' + ' | '.join(
                    f'{n / times[w]:.2f}' for w in counts) + ' |',
                '| speed-up | ' + ' | '.join(
                    f'{b.sweep[str(w)]:.2f}x' for w in counts) + ' |']
    print('\n'.join(sweep_md))
    if args.out_md:
        b.md += '\n'.join(sweep_md) + '\n'
        atomic_write_text(args.out_md, b.md)


def record(b: Bench) -> None:
    """Write the ``selective_search`` section of ``--record``."""
    args, n = b.args, len(b.entries)
    load2 = os.getloadavg()
    loads = [round(b.load0[0], 2), round(load2[0], 2)]
    values = dict(device=cpu_device_name(usable_cores=False))
    if two_core_run(args):
        values.update(two_core_speedup_full_res=b.t_loop / b.t_tool,
                      sec_per_image_full_res=b.t_loop / n,
                      two_core_command=b.cmd, two_core_load_average=loads,
                      two_core_machine=machine_summary())
    if b.sweep:
        values.update(workers_speedup=b.sweep, sweep_command=b.cmd,
                      sweep_load_average=loads,
                      sweep_machine=machine_summary())
    update_performance_record(args.record, 'selective_search', values)
    print(f'recorded selective_search in {args.record}')
