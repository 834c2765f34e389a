"""The main job's report: markdown plus PNG figures.

Figures: pre-training losses and the curriculum schedule (read back from the
runs' ``vis_data/scalars.json``), sample proposals, sample detections of the
fine-tuned Mask R-CNN; tables: COCO bbox/segm AP of each method and the time
of each stage.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

AP_KEYS = (('bbox AP', 'coco/bbox_mAP'), ('bbox AP50', 'coco/bbox_mAP_50'),
           ('bbox AP75', 'coco/bbox_mAP_75'), ('mask AP', 'coco/segm_mAP'),
           ('mask AP50', 'coco/segm_mAP_50'), ('mask AP75',
                                                'coco/segm_mAP_75'))
METHOD_NAMES = dict(ccop='CCOP', mocov2='MoCo v2 (mmpretrain)',
                    none='no pre-training (random init)')


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
    """All logged training scalars of an mmengine run folder (every restart)."""
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

    from ccop_plugin.proposals import draw_proposals
    with open(proposal_file) as f:
        coco = json.load(f)
    by_img: Dict[int, list] = {}
    for a in coco['annotations']:
        by_img.setdefault(a['image_id'], []).append(a['bbox'])
    tiles = []
    for im in coco['images'][:num]:
        img = cv2.imread(osp.join(img_dir, im['file_name']))
        if img is None:
            continue
        boxes = np.array(by_img.get(im['id'], []), np.float32).reshape(-1, 4)
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


def write_report(cfg, results: Dict, methods: List[str]) -> str:
    """Write ``<work_dir>/report.md`` and its figures; return its path."""
    from ccop_plugin.apis.main_job import FINETUNE_CONFIG
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
            lines += [f'Sample detections ({METHOD_NAMES[main]}, score > '
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
    for m in methods:
        for st, r in results[m].items():
            lines.append(row(f'{st} {m}', r))
    path = osp.join(cfg.work_dir, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
