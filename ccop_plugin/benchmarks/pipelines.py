"""Time data pipelines as one data-loader worker runs them.

:func:`benchmark_pipelines` generates (or takes) JPEGs plus a proposal JSON,
builds the pipelines in one process and reports images/s, so the data side
can be checked against the budget "box-aware >= 0.8x MoCo v2" without a GPU
(``tools/benchmark_pipelines.py``). The pipelines compared by default are
those of the configs: CCOP's box-aware one from the packaged paper config,
MoCo v2's from mmpretrain's packaged config, so the benchmark always times
what training runs.
"""
import argparse
import copy
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..proposals.proposal_file import write_proposal_file
from ..proposals.sources import ImageEntry
from ..utils.config_path import (
    get_config_path,
    get_mmpretrain_config_path,
)

#: CCOP's paper config (packaged): its box-aware training pipeline.
CCOP_CFG = 'ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py'
#: mmpretrain's MoCo v2 config (packaged with mmpretrain).
MOCO_CFG = 'mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'


def ccop_config_path() -> str:
    """Path of CCOP's packaged paper config."""
    return get_config_path(CCOP_CFG)


def mocov2_config_path() -> str:
    """Path of mmpretrain's packaged MoCo v2 config."""
    return get_mmpretrain_config_path(MOCO_CFG)


def config_pipelines() -> Dict[str, list]:
    """``{'mocov2': ..., 'ccop': ...}``: the training pipelines of the two
    configs (fresh copies)."""
    from mmengine.config import Config

    def pipeline(path):
        return copy.deepcopy(
            Config.fromfile(path).train_dataloader.dataset.pipeline)
    return dict(mocov2=pipeline(mocov2_config_path()),
                ccop=pipeline(ccop_config_path()))


def with_cv2_crop(pipeline: Sequence) -> list:
    """A copy of ``pipeline`` whose ``RandomResizedCrop`` uses OpenCV."""
    def visit(node):
        if isinstance(node, dict):
            node = {k: visit(v) for k, v in node.items()}
            if node.get('type') == 'RandomResizedCrop':
                node['backend'] = 'cv2'
            return node
        if isinstance(node, (list, tuple)):
            return [visit(v) for v in node]
        return node
    return visit(copy.deepcopy(list(pipeline)))


def write_benchmark_images(out_dir: str,
                           num_images: int = 32,
                           width: int = 640,
                           height: int = 480,
                           boxes_per_image: int = 100,
                           seed: int = 0) -> str:
    """Write random-textured JPEGs and a COCO-style proposal JSON.

    Returns:
        str: The proposal JSON's path (``file_name`` relative to
        ``out_dir``).
    """
    rng = np.random.default_rng(seed)
    entries, results = [], {}
    for i in range(num_images):
        small = rng.integers(0, 256, (height // 8, width // 8, 3), np.uint8)
        img = cv2.resize(small, (width, height),
                         interpolation=cv2.INTER_LINEAR)
        name = f'img_{i:05d}.jpg'
        cv2.imwrite(osp.join(out_dir, name), img)
        entries.append(ImageEntry(i, name))
        wh = rng.uniform(16, 0.6 * min(width, height), (boxes_per_image, 2))
        xy = rng.uniform(0, 1, (boxes_per_image, 2)) * (
            np.array([width, height]) - wh)
        results[name] = dict(width=width, height=height,
                             boxes=np.concatenate([xy, wh], 1))
    path = osp.join(out_dir, 'proposals.json')
    write_proposal_file(path, entries, results)
    return path


def benchmark_pipelines(pipelines: Optional[Dict[str, Sequence]] = None,
                        data_root: Optional[str] = None,
                        ann_file: Optional[str] = None,
                        num_images: int = 32,
                        repeats: int = 2,
                        warmup: int = 4,
                        seed: int = 0,
                        worker_threads: Optional[int] = 1) -> List[Dict]:
    """Images/s of data pipelines in this process (one data-loader worker).

    Every pipeline runs through :class:`ProposalImageDataset` over the same
    images, ``repeats`` passes after ``warmup`` items; the pipelines take
    turns image by image, so outside load slows them alike.

    Args:
        pipelines (dict, optional): name -> pipeline config list. Defaults to
            :func:`config_pipelines` (MoCo v2's and CCOP's configs).
        data_root (str, optional): Image root; None generates 640x480 JPEGs
            in a temporary folder.
        ann_file (str, optional): Proposal JSON under ``data_root``.
        num_images (int): Images generated when ``data_root`` is None.
        repeats (int): Passes over the images.
        warmup (int): Untimed items first.
        seed (int): Seed of NumPy's global generator (crops, flips).
        worker_threads (int, optional): torch and OpenCV threads while
            timing; 1 (the default) is what a data-loader worker gets
            (PyTorch sets 1 thread in its workers). None leaves them.

    Returns:
        list[dict]: Per pipeline ``name``, ``img_per_s``, ``sec_per_img``,
        ``boxes_per_img`` (mean boxes kept in all views; None for a
        pipeline without boxes) and
        ``relative`` (to the first pipeline).
    """
    import mmpretrain.datasets  # noqa: F401
    import torch

    import ccop_plugin  # noqa: F401  (registers the transforms)
    pipelines = pipelines or config_pipelines()
    threads = (torch.get_num_threads(), cv2.getNumThreads())
    if worker_threads is not None:
        torch.set_num_threads(worker_threads)
        cv2.setNumThreads(worker_threads)
    try:
        return _run(pipelines, data_root, ann_file, num_images, repeats,
                    warmup, seed)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


def _run(pipelines, data_root, ann_file, num_images, repeats, warmup,
         seed) -> List[Dict]:
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    with tempfile.TemporaryDirectory() as tmp:
        if data_root is None:
            data_root = tmp
            ann_file = write_benchmark_images(tmp, num_images, seed=seed)
        datasets = {}
        for name, pipeline in pipelines.items():
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                datasets[name] = DATASETS.build(
                    dict(type='ProposalImageDataset', data_root=data_root,
                         ann_file=ann_file, data_prefix=dict(img_path=''),
                         pipeline=copy.deepcopy(list(pipeline))))
        np.random.seed(seed)
        for dataset in datasets.values():
            for i in range(min(warmup, len(dataset))):
                dataset[i]
        # interleaved per image, so that load from other processes hits
        # every pipeline alike
        secs = dict.fromkeys(datasets, 0.)
        boxes = dict.fromkeys(datasets, 0)
        has_boxes = dict.fromkeys(datasets, False)
        n = 0
        for _ in range(repeats):
            for i in range(len(next(iter(datasets.values())))):
                for name, dataset in datasets.items():
                    t0 = time.perf_counter()
                    ds = dataset[i]['data_samples']
                    secs[name] += time.perf_counter() - t0
                    if 'view_bboxes' in ds:
                        has_boxes[name] = True
                        boxes[name] += ds.view_bboxes.shape[1]
                n += 1
        rows = [
            dict(name=name, img_per_s=n / secs[name],
                 sec_per_img=secs[name] / n,
                 boxes_per_img=boxes[name] / n if has_boxes[name] else None)
            for name in datasets
        ]
    for r in rows:
        r['relative'] = r['img_per_s'] / rows[0]['img_per_s']
    return rows


def build_parser() -> argparse.ArgumentParser:
    """``tools/benchmark_pipelines.py``'s options."""
    p = argparse.ArgumentParser(description='box-aware vs MoCo v2 pipeline')
    p.add_argument('--num-images', type=int, default=32)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--threads', type=int, default=1,
                   help='torch/OpenCV threads (1 = as a data-loader worker)')
    return p


def pipelines_table(rows: List[Dict]) -> str:
    """The markdown table of :func:`benchmark_pipelines`' rows."""
    lines = ['| pipeline | images/s | ms/image | boxes kept/image | '
             'relative |', '|---|---|---|---|---|']
    for r in rows:
        kept = ('-' if r['boxes_per_img'] is None else
                round(r['boxes_per_img'], 1))
        lines.append(f"| {r['name']} | {r['img_per_s']:.1f} | "
                     f"{1000 * r['sec_per_img']:.2f} | {kept} | "
                     f"{r['relative']:.2f} |")
    return '\n'.join(lines)


def run_pipeline_benchmark(args: argparse.Namespace) -> List[Dict]:
    """Run :func:`benchmark_pipelines` with :func:`build_parser`'s options
    and print its table."""
    rows = benchmark_pipelines(num_images=args.num_images,
                               repeats=args.repeats,
                               worker_threads=args.threads)
    print(pipelines_table(rows))
    return rows
