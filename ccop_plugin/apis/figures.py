"""Figures of the main job's report (PNG): training curves, the comparison's
bars with error bars, sample proposals and sample detections. Every function
returns the path it wrote, or None when there was nothing to draw."""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ccop_plugin.utils.coco_file import read_coco
from ccop_plugin.utils.stats import mean_std
from .science_record import RECORD_KEYS, RECORD_LABELS


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, out: str) -> str:
    """Lay out, write and close ``fig``; return ``out``."""
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_curves(rows: List[Dict], keys: Sequence[str], out: str, title: str,
                ylabel: str = '', label=lambda k: k) -> Optional[str]:
    """One line per key of the logged ``rows`` against the iteration."""
    keys = [k for k in keys if any(k in r for r in rows)]
    if not keys:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        pts = [(r['iter'], r[k]) for r in rows if k in r]
        ax.plot(*zip(*pts), label=label(k))
    ax.set_xlabel('iteration')
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return _save(plt, fig, out)


def plot_losses(rows: List[Dict], out: str) -> Optional[str]:
    """CCOP's pre-training losses (total, image, RoI, intra)."""
    return plot_curves(rows, ('loss', 'loss_img', 'loss_roi', 'loss_intra'),
                       out, 'CCOP pre-training losses', ylabel='loss')


def plot_curriculum(rows: List[Dict], out: str) -> Optional[str]:
    """The spatial-noise curriculum's logged parameters."""
    keys = sorted({k for r in rows for k in r if k.startswith('curriculum')})
    return plot_curves(rows, keys, out,
                       'spatial-noise curriculum (CurriculumHook)',
                       label=lambda k: k.replace('curriculum_', ''))


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
    return _save(plt, fig, out)


def _grid(images: List[np.ndarray], cols: int = 4) -> np.ndarray:
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    rows = (len(images) + cols - 1) // cols
    canvas = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for n, img in enumerate(images):
        r, c = divmod(n, cols)
        canvas[r * h:r * h + img.shape[0], c * w:c * w + img.shape[1]] = img
    return canvas


def _zoom(img: np.ndarray) -> int:
    """2 for small images (the synthetic scenes), else 1."""
    return 2 if max(img.shape[:2]) <= 256 else 1


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
        z = _zoom(img)
        img = cv2.resize(img, None, fx=z, fy=z,
                         interpolation=cv2.INTER_NEAREST)
        tiles.append(draw_proposals(img, boxes[:max_boxes] * z, thickness=1,
                                    label=False,
                                    title=f'{min(len(boxes), max_boxes)} of '
                                    f'{len(boxes)}'))
    if not tiles:
        return None
    cv2.imwrite(out, _grid(tiles))
    return out


def draw_sample_detections(config, checkpoint: str, data_root: str,
                           out: str, num: int = 8,
                           score_thr: float = 0.3) -> Optional[str]:
    """Run the fine-tuned detector (``config``: a path or a ``Config``) on
    validation images and draw the results; mmdet's ``init_detector`` makes
    'mmdet' the process's default scope, the caller's is restored."""
    from ccop_plugin.utils.default_scope import keep_default_scope
    with keep_default_scope():
        return _draw_sample_detections(config, checkpoint, data_root, out,
                                       num, score_thr)


def _draw_sample_detections(config, checkpoint: str, data_root: str,
                            out: str, num: int,
                            score_thr: float) -> Optional[str]:
    import cv2
    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config

    from ccop_plugin.apis.finetune import set_data_root
    cfg = (Config.fromfile(config) if isinstance(config, str) else
           copy.deepcopy(config))
    set_data_root(cfg, data_root)
    cfg.model.init_cfg = None
    model = init_detector(cfg, checkpoint, device='cpu')
    classes = model.dataset_meta.get('classes', ())
    val = osp.join(data_root, 'annotations', 'instances_val.json')
    images = read_coco(val)['images'][:num]
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
        z = _zoom(vis)
        vis = cv2.resize(vis, None, fx=z, fy=z,
                         interpolation=cv2.INTER_NEAREST)
        for box, label, score in zip(res.bboxes[keep].numpy(),
                                     res.labels[keep].numpy(),
                                     res.scores[keep].numpy()):
            name = classes[label] if label < len(classes) else str(label)
            cv2.putText(vis, f'{name} {score:.2f}',
                        (int(box[0]) * z, max(10, int(box[1]) * z - 3)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
        tiles.append(vis)
    if not tiles:
        return None
    cv2.imwrite(out, _grid(tiles))
    return out
