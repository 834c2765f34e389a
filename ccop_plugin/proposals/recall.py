"""Proposal recall against ground-truth boxes (proposal quality).

Recall at ``k`` proposals and IoU ``t``: the fraction of ground-truth boxes
(``iscrowd`` and ``ignore`` ones left out, as mmdet's ``CocoMetric`` does)
matched by one of the first ``k`` proposals of their image with IoU >= ``t``.
The matching is mmdet's (``mmdet.evaluation.functional.recall``): greedy,
one-to-one, highest IoU first. Average recall ``AR@k`` averages the recall
over IoU 0.50:0.05:0.95 (COCO's AR).

Proposals are read by :func:`read_proposal_file` (the one reader of the
format) and prepared as :class:`LoadProposals` gives them to pre-training:
boxes that are non-finite, empty or outside the image are dropped (counted),
the rest clipped to the image, the file's order kept -- the proposal tool
writes the best first, so ``AR@k`` uses the first ``k``. A ground-truth image
that the proposal file does not list counts as an image without proposals
(zero recall for its boxes) and is reported.

mmdet 3.3's ``eval_recalls`` stacks the per-image IoU matrices with
``np.array``, which NumPy >= 1.24 refuses when images have different box
counts; :func:`recall_table` builds the object array itself and calls the
same ``_recalls`` (identical values where ``eval_recalls`` works).
"""
import contextlib
import io
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ccop_plugin.utils.boxes import xywh_to_xyxy
from .proposal_file import read_proposal_file, sanitize_boxes

PROPOSAL_NUMS = (10, 50, 100)
IOU_THRS = (0.5, 0.7)
#: COCO's AR grid, rounded so that 0.7 is exactly 0.7
AR_IOU_THRS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())


class GroundTruth(object):
    """Ground-truth boxes of a COCO annotation file.

    Attributes:
        ann_file (str): The file.
        names (list[str]): ``file_name`` of every image, in file order.
        boxes (dict): ``file_name -> (n, 4)`` float32 ``xyxy`` boxes.
        sizes (dict): ``file_name -> (height, width)``.
        num_ignored (int): ``iscrowd`` / ``ignore`` boxes left out.
    """

    def __init__(self, ann_file: str, names: List[str],
                 boxes: Dict[str, np.ndarray],
                 sizes: Dict[str, Tuple[float, float]],
                 num_ignored: int) -> None:
        self.ann_file = ann_file
        self.names = names
        self.boxes = boxes
        self.sizes = sizes
        self.num_ignored = num_ignored

    @property
    def num_boxes(self) -> int:
        return int(sum(len(b) for b in self.boxes.values()))


def load_ground_truth(ann_file: str) -> GroundTruth:
    """Read the ground-truth boxes of a COCO file with pycocotools.

    Raises:
        ValueError: one line naming the file (missing, not JSON, not COCO,
            no images).
    """
    from pycocotools.coco import COCO
    if not osp.isfile(ann_file):
        raise ValueError(f'{ann_file}: ground-truth file not found')
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(ann_file)
    except json.JSONDecodeError as e:
        raise ValueError(f'{ann_file}: not valid JSON ({e})') from None
    except (KeyError, TypeError, AssertionError) as e:
        raise ValueError(f'{ann_file}: not a COCO annotation file '
                         f'({type(e).__name__}: {e})') from None
    if not coco.dataset.get('images'):
        raise ValueError(f'{ann_file}: no "images" in the annotation file')
    if 'annotations' not in coco.dataset:
        raise ValueError(f'{ann_file}: no "annotations" (an image list '
                         'without ground truth cannot measure recall)')
    names, boxes, sizes, ignored = [], {}, {}, 0
    for img_id in coco.getImgIds():
        img = coco.imgs[img_id]
        name = img['file_name']
        b = []
        for ann in coco.imgToAnns.get(img_id, []):
            if ann.get('iscrowd', 0) or ann.get('ignore', False):
                ignored += 1
                continue
            try:
                x, y, w, h = (float(v) for v in ann['bbox'])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f'{ann_file}: annotation id {ann.get("id")!r} has no '
                    f'"bbox" [x, y, w, h] (got {ann.get("bbox")!r:.60})'
                ) from None
            if not (w > 0 and h > 0):
                ignored += 1
                continue
            b.append([x, y, x + w, y + h])
        names.append(name)
        boxes[name] = np.asarray(b, np.float32).reshape(-1, 4)
        sizes[name] = (float(img.get('height', np.nan)),
                       float(img.get('width', np.nan)))
    return GroundTruth(ann_file, names, boxes, sizes, ignored)


def match_file_names(gt_names: Sequence[str],
                     prop_names: Sequence[str]) -> Dict[str, Optional[str]]:
    """Proposal-file name of every ground-truth image (None if absent).

    The same name matches first; else, as :class:`LoadProposals` does, the
    longest trailing part of one path that is a name of the other (e.g.
    ``val2017/1.jpg`` and ``1.jpg``), if that part names exactly one image.
    """
    props = set(prop_names)

    def tails(name):
        parts = name.replace('\\', '/').split('/')
        return ['/'.join(parts[i:]) for i in range(len(parts))]

    # trailing parts of the proposal names that name a single image
    by_tail: Dict[str, Optional[str]] = {}
    for n in prop_names:
        for t in tails(n)[1:]:
            by_tail[t] = None if t in by_tail else n
    out = {}
    for g in gt_names:
        hit = g if g in props else None
        for t in tails(g) if hit is None else ():
            if t in props:
                hit = t
                break
            if by_tail.get(t):
                hit = by_tail[t]
                break
        out[g] = hit
    return out


def recall_table(gt_boxes: Sequence[np.ndarray],
                 proposals: Sequence[np.ndarray],
                 proposal_nums: Sequence[int] = PROPOSAL_NUMS,
                 iou_thrs: Sequence[float] = IOU_THRS) -> np.ndarray:
    """Recall per ``(proposal_num, iou_thr)`` with mmdet's matching.

    Args:
        gt_boxes: Per image ``(n, 4)`` ``xyxy`` ground truth.
        proposals: Per image ``(k, 4)`` ``xyxy`` proposals, best first.
        proposal_nums: Numbers of leading proposals evaluated.
        iou_thrs: IoU thresholds.

    Returns:
        np.ndarray: ``(len(proposal_nums), len(iou_thrs))`` recalls.

    Raises:
        ValueError: no ground-truth box at all, or mismatched lengths.
    """
    from mmdet.evaluation.functional.bbox_overlaps import bbox_overlaps
    from mmdet.evaluation.functional.recall import _recalls
    if len(gt_boxes) != len(proposals):
        raise ValueError(f'{len(gt_boxes)} ground-truth images but '
                         f'{len(proposals)} proposal lists')
    nums = np.asarray(proposal_nums, dtype=np.int64)
    if nums.ndim != 1 or not len(nums) or (nums < 1).any():
        raise ValueError(f'proposal numbers must be >= 1, got '
                         f'{list(proposal_nums)}')
    if sum(len(g) for g in gt_boxes) == 0:
        raise ValueError('no ground-truth boxes: recall is undefined')
    top = int(nums.max())
    all_ious = np.empty(len(gt_boxes), dtype=object)
    for i, (g, p) in enumerate(zip(gt_boxes, proposals)):
        g = np.asarray(g, np.float32).reshape(-1, 4)
        p = np.asarray(p, np.float32).reshape(-1, 4)[:top]
        all_ious[i] = (bbox_overlaps(g, p) if len(g) and len(p) else
                       np.zeros((len(g), len(p)), np.float32))
    return _recalls(all_ious, nums, np.asarray(iou_thrs, np.float64))


def evaluate_proposals(gt: GroundTruth, index,
                       proposal_nums: Sequence[int] = PROPOSAL_NUMS,
                       iou_thrs: Sequence[float] = IOU_THRS) -> Dict:
    """Recall and AR of a read proposal file against ground truth.

    Args:
        gt: From :func:`load_ground_truth`.
        index: A ``ProposalIndex`` from :func:`read_proposal_file`.
        proposal_nums, iou_thrs: As :func:`recall_table`.

    Returns:
        dict: JSON-ready: ``recall`` (``{k: {iou: value}}``), ``ar``
        (``{k: AR over IoU 0.5:0.95}``) and counts: ``images``,
        ``gt_boxes``, ``gt_ignored``, ``matched_images``, ``missing_images``
        (ground-truth images absent from the proposal file, zero recall),
        ``images_without_proposals`` (no valid proposal, incl. missing),
        ``dropped_invalid``, ``proposals_per_image``,
        ``distinct_proposals_per_image`` (repeated boxes counted once: a
        generator that repeats a box gains nothing from it),
        ``images_with_at_least`` (``{k: images with >= k proposals}``).

    Raises:
        ValueError: naming the proposal file when it names none of the
            ground-truth images.
    """
    match = match_file_names(gt.names, index.names)
    matched = [g for g in gt.names if match[g] is not None]
    if not matched:
        eg_gt = gt.names[0]
        eg_p = index.names[0] if index.names else '(no images)'
        raise ValueError(
            f'{index.path}: names none of the {len(gt.names)} images of '
            f'{gt.ann_file} (e.g. {eg_gt!r} there, {eg_p!r} here); give '
            'the proposals of that split')
    gts, props, dropped = [], [], 0
    for g in gt.names:
        gts.append(gt.boxes[g])
        name = match[g]
        if name is None:
            props.append(np.zeros((0, 4), np.float32))
            continue
        b = xywh_to_xyxy(index.boxes.get(name, np.zeros((0, 4), np.float32)))
        h, w = gt.sizes[g]
        if np.isnan(h) or np.isnan(w):
            h, w = np.inf, np.inf  # unknown size: nothing clipped
        kept, n_bad = sanitize_boxes(b, (h, w), max_num=max(len(b), 1))
        dropped += n_bad
        props.append(kept)
    iou_all = sorted(set(float(t) for t in iou_thrs) | set(AR_IOU_THRS))
    table = recall_table(gts, props, proposal_nums, iou_all)
    counts = np.array([len(p) for p in props])
    distinct = np.array([len(np.unique(p, axis=0)) for p in props])
    col = {t: iou_all.index(float(t)) for t in iou_all}
    ar_cols = [col[t] for t in AR_IOU_THRS]
    return dict(
        images=len(gt.names),
        gt_boxes=gt.num_boxes,
        gt_ignored=gt.num_ignored,
        matched_images=len(matched),
        missing_images=len(gt.names) - len(matched),
        images_without_proposals=int((counts == 0).sum()),
        dropped_invalid=int(dropped),
        proposals_per_image=round(float(counts.mean()), 2),
        distinct_proposals_per_image=round(float(distinct.mean()), 2),
        images_with_at_least={int(k): int((counts >= k).sum())
                              for k in proposal_nums},
        recall={int(k): {float(t): round(float(table[i, col[float(t)]]), 4)
                         for t in iou_thrs}
                for i, k in enumerate(proposal_nums)},
        ar={int(k): round(float(table[i, ar_cols].mean()), 4)
            for i, k in enumerate(proposal_nums)})


def evaluate_proposal_file(ann_file: str, proposal_file: str,
                           proposal_nums: Sequence[int] = PROPOSAL_NUMS,
                           iou_thrs: Sequence[float] = IOU_THRS,
                           gt: Optional[GroundTruth] = None) -> Dict:
    """:func:`evaluate_proposals` of two files (``gt`` reuses a read one).

    Raises:
        ValueError: one line naming the file at fault.
    """
    if gt is None:
        gt = load_ground_truth(ann_file)
    if not osp.isfile(proposal_file):
        raise ValueError(f'{proposal_file}: proposal file not found')
    index = read_proposal_file(proposal_file)
    res = evaluate_proposals(gt, index, proposal_nums, iou_thrs)
    return dict(ann_file=ann_file, proposal_file=proposal_file, **res)


def _table_cells(rows: Sequence[Tuple[str, Dict]]
                 ) -> Tuple[List[str], List[List[str]]]:
    first = rows[0][1]
    nums = list(first['recall'])
    ious = list(first['recall'][nums[0]])
    head = (['proposals'] + [f'R@{k}/{t:g}' for k in nums for t in ious] +
            [f'AR@{k}' for k in nums] +
            ['props/img', 'distinct/img', 'missing'])
    body = []
    for label, r in rows:
        body.append([label] +
                    [f'{r["recall"][k][t]:.3f}' for k in nums for t in ious]
                    + [f'{r["ar"][k]:.3f}' for k in nums] +
                    [f'{r["proposals_per_image"]:.1f}',
                     f'{r["distinct_proposals_per_image"]:.1f}',
                     str(r['missing_images'])])
    return head, body


def format_recall_table(rows: Sequence[Tuple[str, Dict]]) -> str:
    """A compact text table: one row per ``(label, result)``.

    Columns: ``R@k/iou`` (recall at the first ``k`` proposals and that IoU)
    for every number and threshold of the first result, ``AR@k`` for every
    number, proposals per image and ground-truth images missing from the
    proposal file. All results must share numbers and thresholds.
    """
    if not rows:
        return ''
    head, body = _table_cells(rows)
    widths = [max(len(x[c]) for x in [head] + body) for c in range(len(head))]

    def line(cells):
        return '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return '\n'.join([line(head), line(['-' * w for w in widths])] +
                     [line(b) for b in body])


def format_recall_markdown(rows: Sequence[Tuple[str, Dict]]) -> str:
    """The table of :func:`format_recall_table`, in Markdown."""
    if not rows:
        return ''
    head, body = _table_cells(rows)
    out = ['| ' + ' | '.join(head) + ' |',
           '| ' + ' | '.join(['---'] + ['---:'] * (len(head) - 1)) + ' |']
    out += ['| ' + ' | '.join(b) + ' |' for b in body]
    return '\n'.join(out)
