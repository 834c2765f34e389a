"""Time CCOP's box-aware two-view pipeline against mmpretrain's MoCo v2 one.

:func:`benchmark_pipelines` generates (or takes) JPEGs plus a proposal JSON,
builds both pipelines in one process and reports images/s, so the data side
can be checked against the budget "box-aware >= 0.8x MoCo v2" without a GPU::

    python -c "from ccop_plugin.datasets.benchmark import main; main()" \
        --num-images 64 --repeats 3
"""
import copy
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..proposals.proposal_file import write_proposal_file
from ..proposals.sources import ImageEntry
from .transforms.box_aware_views import CCOP_PHOTOMETRIC

#: mmpretrain's MoCo v2 view pipeline (configs/_base_/datasets/
#: imagenet_bs32_mocov2.py), with the same photometric part as CCOP's.
MOCOV2_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiView',
        num_views=2,
        transforms=[[
            dict(type='RandomResizedCrop', scale=224,
                 crop_ratio_range=(0.2, 1.), backend='pillow'),
            *CCOP_PHOTOMETRIC,
            dict(type='RandomFlip', prob=0.5),
        ]]),
    dict(type='PackInputs'),
]

#: CCOP's box-aware pipeline (reference ``ContrastiveBox`` settings).
CCOP_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', max_num=100),
    dict(type='BoxAwareMultiView', num_views=2, size=224, scale=(0.1, 1.),
         ratio=(3. / 4., 4. / 3.), part_thr=0.6, area_thr=144,
         min_num_boxes=1, max_tries=10, flip_prob=0.5,
         transforms=[CCOP_PHOTOMETRIC]),
    dict(type='PackBoxSelfSupInputs'),
]


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
            ``{'mocov2': MOCOV2_PIPELINE, 'ccop': CCOP_PIPELINE}``.
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
    pipelines = pipelines or dict(mocov2=MOCOV2_PIPELINE, ccop=CCOP_PIPELINE)
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


def main(argv: Optional[Sequence[str]] = None) -> List[Dict]:
    """CLI: print the :func:`benchmark_pipelines` table."""
    import argparse
    p = argparse.ArgumentParser(description='box-aware vs MoCo v2 pipeline')
    p.add_argument('--num-images', type=int, default=32)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--threads', type=int, default=1,
                   help='torch/OpenCV threads (1 = as a data-loader worker)')
    args = p.parse_args(argv)
    rows = benchmark_pipelines(num_images=args.num_images,
                               repeats=args.repeats,
                               worker_threads=args.threads)
    print('| pipeline | images/s | ms/image | boxes kept/image | relative |')
    print('|---|---|---|---|---|')
    for r in rows:
        kept = ('-' if r['boxes_per_img'] is None else
                round(r['boxes_per_img'], 1))
        print(f"| {r['name']} | {r['img_per_s']:.1f} | "
              f"{1000 * r['sec_per_img']:.2f} | {kept} | "
              f"{r['relative']:.2f} |")
    return rows


if __name__ == '__main__':
    main()
