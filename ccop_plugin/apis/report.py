"""The main job's report: markdown plus PNG figures.

Figures: pre-training losses and the curriculum schedule (read back from the
runs' ``vis_data/scalars.json``), sample proposals, sample detections of the
fine-tuned Mask R-CNN, and for a multi-seed comparison the mean +- std of each
method with error bars; tables: COCO bbox/segm AP of each method, mean +- std
over seeds, and the time of each stage.

The comparison's machine-readable record (``science.json``) has one writer,
:func:`write_science_record`, and one reader, :func:`read_science_record`.
"""
import glob
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ccop_plugin.utils.fileio import atomic_write_json, atomic_write_text
from .methods import FINETUNE_CONFIG, METHOD_NAMES

AP_KEYS = (('bbox AP', 'coco/bbox_mAP'), ('bbox AP50', 'coco/bbox_mAP_50'),
           ('bbox AP75', 'coco/bbox_mAP_75'), ('mask AP', 'coco/segm_mAP'),
           ('mask AP50', 'coco/segm_mAP_50'), ('mask AP75',
                                                'coco/segm_mAP_75'))
#: The record's values per method and seed (fractions, as mmdet reports).
RECORD_KEYS = ('probe_acc', 'bbox_ap', 'segm_ap')
RECORD_LABELS = dict(probe_acc='probe acc', bbox_ap='bbox AP',
                     segm_ap='mask AP')


def ap_table(metrics: Dict[str, Dict[str, float]]) -> str:
    """Markdown table of COCO AP (x100) per method."""
    head = '| pre-training | ' + ' | '.join(n for n, _ in AP_KEYS) + ' |'
    lines = [head, '|' + ' --- |' * (len(AP_KEYS) + 1)]
    for method, m in metrics.items():
        vals = [f'{100 * m[k]:.1f}' if k in m else '-' for _, k in AP_KEYS]
        lines.append(f'| {METHOD_NAMES.get(method, method)} | ' +
                     ' | '.join(vals) + ' |')
    return '\n'.join(lines) + '\n'


def read_scalars(run_dir: str) -> List[Dict]:
    """All logged training scalars of an mmengine run folder (every
    restart)."""
    rows = []
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    rows = [r for r in rows if 'iter' in r]
    dedup = {r['iter']: r for r in rows}  # a resumed run repeats iterations
    return [dedup[k] for k in sorted(dedup)]


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_losses(rows: List[Dict], out: str) -> Optional[str]:
    keys = [k for k in ('loss', 'loss_img', 'loss_roi', 'loss_intra')
            if any(k in r for r in rows)]
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        pts = [(r['iter'], r[k]) for r in rows if k in r]
        ax.plot(*zip(*pts), label=k)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('CCOP pre-training losses')
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_curriculum(rows: List[Dict], out: str) -> Optional[str]:
    keys = sorted({k for r in rows for k in r if k.startswith('curriculum')})
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        pts = [(r['iter'], r[k]) for r in rows if k in r]
        ax.plot(*zip(*pts), label=k.replace('curriculum_', ''))
    ax.set_xlabel('iteration')
    ax.set_title('spatial-noise curriculum (CurriculumHook)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _grid(images: List[np.ndarray], cols: int = 4) -> np.ndarray:
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    rows = (len(images) + cols - 1) // cols
    canvas = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for n, img in enumerate(images):
        r, c = divmod(n, cols)
        canvas[r * h:r * h + img.shape[0], c * w:c * w + img.shape[1]] = img
    return canvas


def draw_sample_proposals(proposal_file: str, img_dir: str, out: str,
                          num: int = 8, max_boxes: int = 12) -> Optional[str]:
    """Draw the first ``max_boxes`` proposals of ``num`` images in a grid."""
    import cv2

    from ccop_plugin.proposals.proposal_file import read_proposal_file
    from ccop_plugin.proposals.visualize import draw_proposals
    index = read_proposal_file(proposal_file)
    tiles = []
    for name in index.names[:num]:
        img = cv2.imread(osp.join(img_dir, name))
        if img is None:
            continue
        boxes = index.boxes[name]
        img = cv2.resize(img, None, fx=2, fy=2,
                         interpolation=cv2.INTER_NEAREST)
        tiles.append(draw_proposals(img, boxes[:max_boxes] * 2, thickness=1,
                                    label=False,
                                    title=f'{min(len(boxes), max_boxes)} of '
                                    f'{len(boxes)}'))
    if not tiles:
        return None
    cv2.imwrite(out, _grid(tiles))
    return out


def draw_sample_detections(config: str, checkpoint: str, data_root: str,
                           out: str, num: int = 8,
                           score_thr: float = 0.3) -> Optional[str]:
    """Run the fine-tuned detector on validation images and draw results."""
    import cv2
    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config

    from ccop_plugin.apis.finetune import set_data_root
    cfg = Config.fromfile(config)
    set_data_root(cfg, data_root)
    cfg.model.init_cfg = None
    model = init_detector(cfg, checkpoint, device='cpu')
    classes = model.dataset_meta.get('classes', ())
    val = osp.join(data_root, 'annotations', 'instances_val.json')
    with open(val) as f:
        images = json.load(f)['images'][:num]
    rng = np.random.default_rng(0)
    colors = rng.integers(60, 255, (max(len(classes), 1), 3))
    tiles = []
    for im in images:
        path = osp.join(data_root, 'images', 'val', im['file_name'])
        img = cv2.imread(path)
        res = inference_detector(model, path).pred_instances
        keep = res.scores > score_thr
        vis = img.copy()
        masks = res.masks[keep].numpy() if 'masks' in res else None
        for i, (box, label, score) in enumerate(
                zip(res.bboxes[keep].numpy(), res.labels[keep].numpy(),
                    res.scores[keep].numpy())):
            color = tuple(int(c) for c in colors[label % len(colors)])
            if masks is not None:
                m = masks[i].astype(bool)
                vis[m] = (0.5 * vis[m] + 0.5 * np.array(color)).astype(
                    np.uint8)
            x1, y1, x2, y2 = box.astype(int)
            cv2.rectangle(vis, (x1, y1), (x2, y2), color, 1)
        vis = cv2.resize(vis, None, fx=2, fy=2,
                         interpolation=cv2.INTER_NEAREST)
        for box, label, score in zip(res.bboxes[keep].numpy(),
                                     res.labels[keep].numpy(),
                                     res.scores[keep].numpy()):
            name = classes[label] if label < len(classes) else str(label)
            cv2.putText(vis, f'{name} {score:.2f}',
                        (int(box[0]) * 2, max(10, int(box[1]) * 2 - 3)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
        tiles.append(vis)
    if not tiles:
        return None
    cv2.imwrite(out, _grid(tiles))
    return out


# ------------------------------------------------------- multi-seed results
def mean_std(values: Sequence[Optional[float]]) -> Dict:
    """Mean and sample standard deviation (ddof 1) of the non-null values;
    ``std`` is None for fewer than two values, both are None for none."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return dict(mean=None, std=None, n=0)
    mean = sum(xs) / n
    std = (math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
           if n > 1 else None)
    return dict(mean=mean, std=std, n=n)


def _fmt_ms(values: Sequence[Optional[float]], total: int) -> str:
    ms = mean_std(values)
    if ms['mean'] is None:
        return '-'
    text = f"{100 * ms['mean']:.1f}"
    if ms['std'] is not None:
        text += f" ± {100 * ms['std']:.1f}"
    if ms['n'] < total:
        text += f" ({ms['n']} of {total})"
    return text


def comparison_table(values: Dict[str, Dict[str, List]], seeds: Sequence[int],
                     split: str = 'test') -> str:
    """Markdown: mean ± sample std (x100) over seeds per method, then the
    value of every seed."""
    n = len(seeds)
    cols = [RECORD_LABELS[k] for k in RECORD_KEYS]
    lines = [f'Mean ± standard deviation (ddof 1) over {n} seed(s) '
             f'{list(seeds)}, x100; AP on the {split} split.', '',
             '| method | ' + ' | '.join(cols) + ' |',
             '|' + ' --- |' * (len(cols) + 1)]
    for m, vals in values.items():
        lines.append(f'| {METHOD_NAMES.get(m, m)} | ' + ' | '.join(
            _fmt_ms(vals[k], n) for k in RECORD_KEYS) + ' |')
    lines += ['', 'Per seed (x100):', '',
              '| method | seed | ' + ' | '.join(cols) + ' |',
              '|' + ' --- |' * (len(cols) + 2)]
    for m, vals in values.items():
        for i, seed in enumerate(seeds):
            cells = ['-' if vals[k][i] is None else f'{100 * vals[k][i]:.1f}'
                     for k in RECORD_KEYS]
            lines.append(f'| {METHOD_NAMES.get(m, m)} | {seed} | ' +
                         ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_comparison(values: Dict[str, Dict[str, List]], out: str,
                    title: str = '') -> Optional[str]:
    """Bars of the mean (x100) per method and measure, error bars of one
    sample standard deviation; None when there is nothing to draw."""
    keys = [k for k in RECORD_KEYS
            if any(mean_std(v[k])['mean'] is not None
                   for v in values.values())]
    if not keys or not values:
        return None
    plt = _plt()
    methods = list(values)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods) + 2), 4))
    width = 0.8 / len(keys)
    for j, k in enumerate(keys):
        stats = [mean_std(values[m][k]) for m in methods]
        xs = [i + (j - (len(keys) - 1) / 2) * width
              for i in range(len(methods))]
        ax.bar(xs, [100 * (s['mean'] or 0) for s in stats], width,
               yerr=[100 * (s['std'] or 0) for s in stats], capsize=3,
               label=RECORD_LABELS[k])
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=30, ha='right')
    ax.set_ylabel('x100 (mean ± std over seeds)')
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def final_losses(rows: List[Dict], frac: float = 0.1) -> Dict[str, float]:
    """Each logged loss (``loss*`` keys) averaged over the last ``frac`` of
    the logged iterations (at least one): where pre-training ended."""
    keys = sorted({k for r in rows for k in r if k.startswith('loss')})
    out = {}
    for k in keys:
        xs = [r[k] for r in rows if k in r]
        tail = xs[-max(1, int(round(frac * len(xs)))):]
        out[k] = sum(tail) / len(tail)
    return out


def pretrain_loss_table(runs: Dict[str, Dict[int, Dict]],
                        methods: Sequence[str], seeds: Sequence[int]) -> str:
    """Markdown: per method the final pre-training losses
    (:func:`final_losses`), mean ± std over seeds; '' when no method
    pre-trained."""
    per = {}
    for m in methods:
        vals: Dict[str, List[float]] = {}
        for s in seeds:
            pre = runs[m][s].get('pretrain') or {}
            if not pre.get('checkpoint'):
                continue
            fl = final_losses(read_scalars(osp.dirname(pre['checkpoint'])))
            for k, v in fl.items():
                vals.setdefault(k, []).append(v)
        if vals:
            per[m] = vals
    if not per:
        return ''
    keys = sorted({k for v in per.values() for k in v},
                  key=lambda k: (k != 'loss', k))
    lines = ['Final pre-training losses (mean of the last 10 % of the logged '
             'iterations; mean ± std over seeds). An InfoNCE loss against a '
             'queue of K keys that cannot tell the positive from the '
             'negatives is ln(K + 1) (5.55 for K = 256).', '',
             '| method | ' + ' | '.join(keys) + ' |',
             '|' + ' --- |' * (len(keys) + 1)]
    for m, vals in per.items():
        cells = []
        for k in keys:
            ms = mean_std(vals.get(k, []))
            cell = '-' if ms['mean'] is None else f"{ms['mean']:.3f}"
            if ms['std'] is not None:
                cell += f" ± {ms['std']:.3f}"
            cells.append(cell)
        lines.append(f'| {METHOD_NAMES.get(m, m)} | ' + ' | '.join(cells) +
                     ' |')
    return '\n'.join(lines) + '\n'


#: Measures of a comparison, in the order the sweep reports them.
MEASURES = ('bbox_ap', 'segm_ap', 'probe_acc')


def separation(values: Dict[str, Dict[str, List]], a: str = 'ccop',
               b: str = 'mocov2', base: str = 'none') -> Dict:
    """How clearly method ``a`` and ``b`` separate, per measure.

    For every measure measured for both: the paired differences ``a - b``
    per seed (same seed, same data), their mean and sample std, the number
    of seeds where ``a`` wins, ``stable`` (every seed has the same
    non-zero sign) and ``beyond_one_std`` (``|mean| > std``). With ``base``
    in ``values``: the seeds where ``a`` / ``b`` beat it.
    """
    out = {}
    if a not in values or b not in values:
        return out
    for k in MEASURES:
        pairs = [(x, y) for x, y in zip(values[a][k], values[b][k])
                 if x is not None and y is not None]
        if not pairs:
            continue
        diffs = [x - y for x, y in pairs]
        ms = mean_std(diffs)
        signs = {(d > 0) - (d < 0) for d in diffs}
        res = dict(diffs=diffs, mean=ms['mean'], std=ms['std'],
                   wins=sum(d > 0 for d in diffs), seeds=len(diffs),
                   stable=len(signs) == 1 and 0 not in signs,
                   beyond_one_std=(ms['std'] is not None and
                                   abs(ms['mean']) > ms['std']))
        if base in values and base not in (a, b):
            for m in (a, b):
                res[f'{m}_beats_{base}'] = sum(
                    x is not None and z is not None and x > z
                    for x, z in zip(values[m][k], values[base][k]))
        out[k] = res
    return out


def paired_table(values: Dict[str, Dict[str, List]],
                 against: str = 'mocov2') -> str:
    """Markdown: every other method minus ``against``, seed by seed (same
    seed, same data): mean ± std (x100), seeds won, whether the sign holds
    for every seed; '' when ``against`` was not run or nothing else was."""
    others = [m for m in values if m != against]
    if against not in values or not others:
        return ''
    name = METHOD_NAMES.get(against, against)
    lines = [f'Paired differences against {name} (method minus {name}, '
             'same seed and data; x100): mean ± std, seeds won, sign the '
             'same in every seed.', '',
             '| method | ' + ' | '.join(RECORD_LABELS[k] for k in MEASURES)
             + ' |', '|' + ' --- |' * (len(MEASURES) + 1)]
    for m in others:
        sep = separation(values, m, against, base='')
        cells = []
        for k in MEASURES:
            r = sep.get(k)
            if not r:
                cells.append('-')
                continue
            cell = f"{100 * r['mean']:+.1f}"
            if r['std'] is not None:
                cell += f" ± {100 * r['std']:.1f}"
            cell += f" ({r['wins']} of {r['seeds']}"
            cell += ', stable)' if r['stable'] else ')'
            cells.append(cell)
        lines.append(f'| {METHOD_NAMES.get(m, m)} | ' + ' | '.join(cells) +
                     ' |')
    return '\n'.join(lines) + '\n'


def compute_seconds(results: Dict, runs: Dict[str, Dict[int, Dict]]) -> float:
    """Seconds of every stage of a comparison (data, proposals, every run's
    stages) as recorded by the run that made it: the table's cost, the
    same when a rerun reuses the stages."""
    total = sum(results[k].get('seconds', 0) for k in ('data', 'proposals')
                if k in results)
    for per_seed in runs.values():
        for stages in per_seed.values():
            total += sum(r.get('seconds', 0) for r in stages.values()
                         if isinstance(r, dict))
    return round(total, 1)


RECORD_WRITER = 'ccop_plugin.apis.report.write_science_record'


def _check_record(obj, path: str) -> None:
    """Raise ValueError (one line naming ``path``) unless ``obj`` is a
    science record."""
    def bad(msg):
        raise ValueError(f'{path}: not a science record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'results'}:
        bad('expected exactly the keys "protocol" and "results"')
    proto, res = obj['protocol'], obj['results']
    if not isinstance(proto, dict) or not isinstance(res, dict):
        bad('"protocol" and "results" must be objects')
    seeds = proto.get('seeds')
    if not isinstance(seeds, list) or not seeds:
        bad('protocol.seeds must be a non-empty list')
    if proto.get('methods') != list(res):
        bad('protocol.methods must list the methods of "results" in order')
    for m, vals in res.items():
        if not isinstance(vals, dict) or set(vals) != set(RECORD_KEYS):
            bad(f'results.{m} must have exactly the keys '
                f'{", ".join(RECORD_KEYS)}')
        for k in RECORD_KEYS:
            v = vals[k]
            if not isinstance(v, list) or len(v) != len(seeds):
                bad(f'results.{m}.{k} must hold one value per seed '
                    f'({len(seeds)})')
            if any(x is not None and not (isinstance(x, (int, float)) and
                                          math.isfinite(x)) for x in v):
                bad(f'results.{m}.{k} holds a value that is neither a '
                    'finite number nor null')


def read_checked_json(path: str, check) -> Dict:
    """Read a JSON record and validate it with ``check(obj, path)``; a file
    that is not JSON is one ``ValueError`` naming it."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path}: not JSON ({e})') from None
    check(obj, path)
    return obj


def refuse_foreign_record(path: str, read, writer: str, what: str,
                          hint: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record that
    ``read`` accepts and whose ``protocol.writer`` is ``writer``."""
    if not osp.lexists(path):
        return
    try:
        ours = read(path)['protocol'].get('writer') == writer
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise FileExistsError(
            f'{path} exists and is not {what} of this tool; nothing '
            f'was written: move it away or pass {hint}')


def read_science_record(path: str) -> Dict:
    """Read and check a record written by :func:`write_science_record`."""
    return read_checked_json(path, _check_record)


def check_record_path(path: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record of
    :func:`write_science_record` (checked before a long run too)."""
    refuse_foreign_record(path, read_science_record, RECORD_WRITER,
                          'a record', 'another record path')


def write_science_record(path: str, protocol: Dict,
                         results: Dict[str, Dict[str, List]]) -> Dict:
    """Write the comparison's record (the only writer of the format)::

        {"protocol": {<every setting of the run; seeds, methods, machine>},
         "results": {"<method>": {"probe_acc": [one value per seed],
                                  "bbox_ap": [...], "segm_ap": [...]}}}

    Values are fractions (COCO mAP and accuracy as computed), null where not
    measured. The file is replaced atomically, and only when it is a record
    of this writer (another file there is an error, nothing is written).
    """
    protocol = dict(protocol, writer=RECORD_WRITER)
    protocol.setdefault('methods', list(results))
    obj = dict(protocol=protocol,
               results={m: {k: list(v[k]) for k in RECORD_KEYS}
                        for m, v in results.items()})
    _check_record(obj, path)
    check_record_path(path)
    atomic_write_json(path, obj, allow_nan=False)
    return obj


def write_report(cfg, results: Dict, methods: List[str],
                 comparison: Optional[Dict] = None) -> str:
    """Write ``<work_dir>/report.md`` and its figures; return its path."""
    from ccop_plugin.utils.config_path import get_config_path
    fig_dir = osp.join(cfg.work_dir, 'figures')
    os.makedirs(fig_dir, exist_ok=True)
    lines = ['# ccop_plugin main job report', '',
             'Synthetic COCO-style data -> selective-search proposals -> '
             'pre-training -> conversion -> Mask R-CNN fine-tuning -> COCO '
             'evaluation. Rerun with the same command: finished stages are '
             'reused.', '']
    d = results['data']
    p = results['proposals']
    lines += ['## Data and proposals', '',
              f"Splits: {d['splits']} images of {cfg.img_size} px "
              f'(seed {cfg.seed}). Selective search: '
              f"{p.get('proposals_per_image', 0):.1f} proposals per image, "
              f"{p.get('failed', 0)} failures, "
              f"{p.get('images_per_s', 0):.1f} images/s with "
              f"{p.get('workers', '?')} workers.", '']
    fig = draw_sample_proposals(
        p['proposal_file'], osp.join(cfg.data_root, 'images', 'unlabeled'),
        osp.join(fig_dir, 'proposals.png'))
    if fig:
        lines += ['![sample proposals](figures/proposals.png)', '']

    if 'ccop' in results and 'pretrain' in results['ccop']:
        rows = read_scalars(osp.dirname(results['ccop']['pretrain']
                                        ['checkpoint']))
        pre = results['ccop']['pretrain']
        lines += ['## CCOP pre-training', '',
                  f"{pre['iters']} iterations of batch {pre['batch']} with "
                  f"`{pre['config']}`, {pre['seconds']:.0f} s.", '']
        if plot_losses(rows, osp.join(fig_dir, 'pretrain_losses.png')):
            lines += ['![losses](figures/pretrain_losses.png)', '']
        if plot_curriculum(rows, osp.join(fig_dir, 'curriculum.png')):
            lines += ['![curriculum](figures/curriculum.png)', '']

    lines += ['## Mask R-CNN fine-tuning (COCO AP on the synthetic val split)',
              '', f'Config `{FINETUNE_CONFIG}`, {cfg.finetune_epochs} epochs, '
              'same seed for every method.', '',
              ap_table({m: results[m]['finetune']['metrics']
                        for m in methods})]
    if comparison:
        seeds = comparison['seeds']
        split = comparison.get('split', 'test')
        lines += [f'## Comparison over {len(seeds)} seed(s) (test figures: '
                  f'{split} split)', '',
                  'Same data (seed %d) for every method and seed; each run '
                  'seed seeds pre-training, fine-tuning and the probe. The '
                  'machine-readable record is `science.json` '
                  '(`tools/compare_pretraining.py --record`).' % cfg.seed, '',
                  comparison_table(comparison['values'], seeds, split)]
        lines += comparison.get('extras', [])
        if plot_comparison(comparison['values'],
                           osp.join(fig_dir, 'comparison.png'),
                           title=f'mean ± std over {len(seeds)} seed(s)'):
            lines += ['![comparison](figures/comparison.png)', '']
    main = methods[0]
    ft = results[main]['finetune']
    if ft.get('checkpoint'):
        try:
            fig = draw_sample_detections(
                get_config_path(FINETUNE_CONFIG), ft['checkpoint'],
                cfg.data_root, osp.join(fig_dir, 'detections.png'))
        except Exception as e:  # the report must not lose the AP table
            fig = None
            lines += [f'(sample detections not drawn: {e})', '']
        if fig:
            lines += [f'Sample detections ({METHOD_NAMES.get(main, main)}, '
                      'score > '
                      '0.3):', '', '![detections](figures/detections.png)',
                      '']

    lines += ['## Stages', '',
              'Each stage is keyed on its settings and on the stages it '
              'reads; a stage made with other settings is recomputed, never '
              'reused (`run`). Seconds are those of the run that made the '
              'result.', '',
              '| stage | seconds | run | key |', '| --- | --- | --- | --- |']

    def row(label, r):
        return (f"| {label} | {r.get('seconds', 0):.0f} | "
                f"{r.get('run', '-')} | `{r.get('key', '-')}` |")

    for name in ('data', 'proposals'):
        lines.append(row(name, results[name]))
    runs = (comparison or {}).get('runs') or {
        m: {cfg.seed: results[m]} for m in methods}
    for m in methods:
        for seed, res in runs[m].items():
            for st, r in res.items():
                label = f'{st} {m}' + ('' if seed == cfg.seed else
                                       f' seed {seed}')
                lines.append(row(label, r))
    path = osp.join(cfg.work_dir, 'report.md')
    atomic_write_text(path, '\n'.join(lines) + '\n')
    return path
