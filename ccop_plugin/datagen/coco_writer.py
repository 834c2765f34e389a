"""Write synthetic scenes as a COCO-format dataset (atomic, resumable)."""
import os
import os.path as osp
import time
from dataclasses import asdict
from typing import Dict, List, Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..utils.fileio import atomic_write_bytes, atomic_write_json
from ..utils.folder_lock import HOLDER_FILE
from ..utils.owned_folder import (
    FolderInUseError,
    FolderLock,
    Manifest,
    settings_diff,
)
from ..utils.records import read_record, write_record
from .scenes import SceneConfig, render_scene

FORMAT_VERSION = 2
META_FILE = 'meta.json'
# written first, before any other file: the folder is this tool's, and the
# files listed are the ones it wrote (the only ones it may replace or delete)
MANIFEST_FILE = '.ccop_datagen_manifest.json'
# the writer tag of meta.json and the manifest
WRITER = 'ccop_plugin.datagen.generate_synthetic_coco'
# split name -> (index in the seed sequence, annotation file, labelled)
SPLITS = {
    'unlabeled': (0, 'annotations/unlabeled.json', False),
    'train': (1, 'annotations/instances_train.json', True),
    'val': (2, 'annotations/instances_val.json', True),
    # optional (num_test > 0): held out from any selection, final figures
    'test': (3, 'annotations/instances_test.json', True),
}


class DatasetFolderInUseError(FolderInUseError, OSError):
    """Another generator is writing the dataset folder (one line; an
    ``OSError`` as well, like the generator's other refusals)."""


def _atomic_write_json(path: str, obj) -> None:
    # this format: indent 1, no final newline
    atomic_write_json(path, obj, indent=1, end='')


def encode_mask(mask: np.ndarray) -> Dict:
    """COCO compressed RLE of a binary (H, W) mask, ``counts`` as str."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``.

    Each image has its own stream, so an image does not change when the
    number of images of any split changes.
    """
    return np.random.default_rng([int(seed), SPLITS[split][0], int(index)])


def _legacy_files(out_dir: str) -> Optional[List[str]]:
    """Files of a dataset written before the manifest existed, read from its
    ``meta.json`` (None when there is no such ``meta.json``)."""
    try:
        meta = _read_meta(out_dir)
        if meta['params']['format_version'] != FORMAT_VERSION:
            return None
        files = [META_FILE]
        for split in meta['splits'].values():
            files.append(split['ann_file'])
            files += [osp.join(split['img_dir'], n)
                      for n in split['file_names']]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return [osp.normpath(f) for f in files]


def _check_meta(obj, path: str) -> None:
    if not (isinstance(obj, dict) and isinstance(obj.get('params'), dict)
            and isinstance(obj.get('splits'), dict)):
        raise ValueError(f'{path}: not a dataset meta.json (needs "params" '
                         'and "splits" objects)')


def _read_meta(out_dir: str) -> Dict:
    """The checked ``meta.json`` of ``out_dir`` (``OSError`` when absent,
    ``ValueError`` naming the file when damaged)."""
    return read_record(osp.join(out_dir, META_FILE), _check_meta)


def _manifest(out_dir: str) -> Manifest:
    return Manifest(out_dir, MANIFEST_FILE, tool=WRITER)


def _owned_files(out_dir: str) -> List[str]:
    """Files of ``out_dir`` this tool wrote (relative paths).

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder this tool did not
            create (no manifest, no dataset of this tool), or its manifest
            is unreadable.
    """
    manifest = _manifest(out_dir)
    if manifest.exists:
        return manifest.files()
    # the holder file of the run's own FolderLock is not someone else's
    if not osp.isdir(out_dir) or not set(os.listdir(out_dir)) - {HOLDER_FILE}:
        return []
    legacy = _legacy_files(out_dir)
    if legacy is not None:
        return legacy
    raise FileExistsError(
        f'{out_dir} is not empty and was not created by the dataset '
        f'generator (no {MANIFEST_FILE}); nothing was written: use a new or '
        'empty output folder')


def _write_manifest(out_dir: str, files: List[str]) -> None:
    _manifest(out_dir).write(files)


def _plan(sizes: Dict[str, int]) -> List[str]:
    files = [META_FILE]
    for split, n in sizes.items():
        files.append(SPLITS[split][1])
        files += [osp.join('images', split, f'{i + 1:06d}.png')
                  for i in range(n)]
    return [osp.normpath(f) for f in files]


def _remove_stale(out_dir: str, stale: List[str]) -> None:
    """Delete files of an earlier, larger generation, which this tool wrote
    (listed in its manifest), so that listing a folder gives the split."""
    for rel in stale:
        path = osp.join(out_dir, rel)
        if osp.isfile(path):
            os.remove(path)


def _split_sizes(num_unlabeled, num_train, num_val,
                 num_test=0) -> Dict[str, int]:
    sizes = dict(unlabeled=num_unlabeled, train=num_train, val=num_val)
    if num_test:  # absent when 0: the parameters of older datasets hold
        sizes['test'] = num_test
    for name, n in sizes.items():
        if n < 0:
            raise ValueError(f'num_{name} must be >= 0, got {n}')
    return sizes


def _read_params(out_dir: str) -> Optional[Dict]:
    """The parameters of the dataset in ``out_dir`` (None: no readable
    ``meta.json``, an unfinished or damaged dataset)."""
    try:
        return _read_meta(out_dir)['params']
    except (OSError, ValueError):
        return None


def is_complete(out_dir: str, params: Optional[Dict] = None) -> bool:
    """Whether ``out_dir`` holds a finished dataset (with ``params``)."""
    try:
        meta = _read_meta(out_dir)
    except (OSError, ValueError):
        return False
    if params is not None and meta.get('params') != params:
        return False
    try:
        for split in meta['splits'].values():
            if not osp.isfile(osp.join(out_dir, split['ann_file'])):
                return False
            img_dir = osp.join(out_dir, split['img_dir'])
            names = split.get('file_names', [])
            if any(not osp.isfile(osp.join(img_dir, n)) for n in names):
                return False
    except (KeyError, TypeError, AttributeError):
        return False
    return True


def _claim(out_dir: str, plan: List[str]) -> List[str]:
    """Claim the folder before writing anything: refuse a folder of someone
    else's files, never replace a file this tool did not write. Lists the
    planned files in the manifest; returns the owned files not planned."""
    owned = _owned_files(out_dir)
    owned_set = set(owned)
    foreign = [f for f in plan
               if f not in owned_set and osp.lexists(osp.join(out_dir, f))]
    if foreign:
        raise FileExistsError(
            f'{osp.join(out_dir, foreign[0])} was not written by the dataset '
            f'generator ({len(foreign)} such files in {out_dir}); nothing '
            'was written: move them away or use another output folder')
    plan_set = set(plan)
    _write_manifest(out_dir, sorted(owned_set | plan_set))
    return [f for f in owned if f not in plan_set]


def _annotations(image_id: int, instances, anns: List[Dict],
                 counts: np.ndarray) -> None:
    for label, mask in instances:
        rle = encode_mask(mask)
        anns.append(dict(
            id=len(anns) + 1, image_id=image_id, category_id=label + 1,
            bbox=[float(v) for v in mask_utils.toBbox(rle)],
            area=float(mask_utils.area(rle)), iscrowd=0, segmentation=rle))
        counts[label] += 1


def _write_split(out_dir: str, split: str, n: int, seed: int,
                 cfg: SceneConfig, verbose: bool) -> Dict:
    """Render and write the images and the annotation file of one split;
    its entry of ``meta.json``."""
    _, ann_rel, labelled = SPLITS[split]
    img_rel = f'images/{split}'
    images: List[Dict] = []
    anns: List[Dict] = []
    names = []
    counts = np.zeros(len(cfg.classes), np.int64)
    for i in range(n):
        img, instances = render_scene(image_rng(seed, split, i), cfg)
        name = f'{i + 1:06d}.png'
        ok, buf = cv2.imencode('.png', img)
        if not ok:
            raise RuntimeError(f'could not encode {split}/{name}')
        atomic_write_bytes(osp.join(out_dir, img_rel, name), buf.tobytes())
        names.append(name)
        images.append(dict(id=i + 1, file_name=name,
                           width=cfg.width, height=cfg.height))
        if verbose and (i + 1) % 50 == 0:
            print(f'{split}: {i + 1}/{n}')
        if labelled:
            _annotations(i + 1, instances, anns, counts)
    categories = [dict(id=i + 1, name=c, supercategory='shape')
                  for i, c in enumerate(cfg.classes)]
    coco = dict(
        info=dict(description=f'ccop_plugin synthetic shapes, {split}',
                  seed=int(seed), version=FORMAT_VERSION),
        images=images, annotations=anns, categories=categories)
    _atomic_write_json(osp.join(out_dir, ann_rel), coco)
    return dict(
        ann_file=ann_rel, img_dir=img_rel + '/', num_images=n,
        num_instances=len(anns), labelled=labelled,
        instances_per_class=(dict(zip(cfg.classes, counts.tolist()))
                             if labelled else None),
        file_names=names)


def generate_synthetic_coco(out_dir: str,
                            seed: int = 0,
                            num_unlabeled: int = 200,
                            num_train: int = 120,
                            num_val: int = 40,
                            img_size: int = 128,
                            overwrite: bool = False,
                            verbose: bool = False,
                            num_test: int = 0,
                            **scene_kwargs) -> Dict:
    """Generate the embedded default dataset in COCO format.

    Layout under ``out_dir``::

        images/{unlabeled,train,val[,test]}/000001.png ...
        annotations/unlabeled.json         # images only, no annotations
        annotations/instances_train.json   # boxes + RLE masks
        annotations/instances_val.json
        annotations/instances_test.json    # only when num_test > 0
        meta.json                          # parameters, counts (written last)
        .ccop_datagen_manifest.json        # the files this tool wrote

    ``file_name`` in each JSON is relative to its split's image folder
    (``images/<split>/``). Boxes are the tight ``[x, y, w, h]`` boxes of the
    visible masks, ``area`` is the visible mask area. Files are written
    atomically; ``meta.json`` marks a finished dataset, and a call whose
    parameters match a finished one returns at once.

    The tool never replaces or deletes a file it did not write: it writes
    into a new or empty folder, or one it wrote before (its manifest
    ``.ccop_datagen_manifest.json``, written before anything else, lists its
    files; a dataset of an earlier version is recognised by its
    ``meta.json``). A non-empty folder of other files, or a file in the way
    that the manifest does not list, is an error and nothing is written.
    The folder is held (:class:`FolderLock`) while it is written: a second
    generator into it is refused. ``meta.json`` is a record tagged with its
    writer (:mod:`ccop_plugin.utils.records`); a damaged one marks an
    unfinished dataset.

    Args:
        out_dir (str): Output folder.
        seed (int): Seed; same seed and parameters give identical files.
        num_unlabeled (int): Images of the pre-training split.
        num_train (int): Labelled images for fine-tuning.
        num_val (int): Labelled images for evaluation.
        img_size (int): Square image side (or pass ``height``/``width``).
        num_test (int): Labelled images of a held-out test split (0: no
            test split; the images of the other splits do not depend on it).
        overwrite (bool): Regenerate even when a different finished dataset
            is there (otherwise that is an error); replaces only files this
            tool wrote.
        verbose (bool): Print progress.
        **scene_kwargs: Fields of :class:`SceneConfig`.

    Returns:
        dict: The content of ``meta.json`` plus ``root`` and ``skipped``.
    """
    sizes = _split_sizes(num_unlabeled, num_train, num_val, num_test)
    scene_kwargs.setdefault('height', img_size)
    scene_kwargs.setdefault('width', img_size)
    cfg = SceneConfig(**scene_kwargs)
    params = _params(seed, sizes, cfg)
    if is_complete(out_dir, params):
        if verbose:
            print(f'{out_dir}: dataset complete, skipping generation')
        return dict(_read_meta(out_dir), root=out_dir, skipped=True)
    try:
        lock = FolderLock(out_dir, what='dataset folder',
                          hint='wait for it to finish, or use another output '
                          'folder')
    except FolderInUseError as e:
        raise DatasetFolderInUseError(str(e)) from None
    with lock:
        return _generate(out_dir, params, sizes, seed, cfg, overwrite,
                         verbose)


def _params(seed: int, sizes: Dict[str, int], cfg: SceneConfig) -> Dict:
    """The parameters a dataset is recognised by (``meta.json``'s
    ``params``)."""
    params = dict(
        format_version=FORMAT_VERSION, seed=int(seed), sizes=sizes,
        scene={k: (list(v) if isinstance(v, tuple) else v)
               for k, v in asdict(cfg).items()})
    params['scene']['classes'] = list(cfg.classes)
    return params


def _generate(out_dir: str, params: Dict, sizes: Dict[str, int], seed: int,
              cfg: SceneConfig, overwrite: bool, verbose: bool) -> Dict:
    """Write the dataset into ``out_dir`` (whose lock the caller holds)."""
    meta_path = osp.join(out_dir, META_FILE)
    old = _read_params(out_dir)
    if old is not None and old != params and not overwrite:
        raise FileExistsError(
            f'{out_dir} holds a dataset generated with other parameters '
            f'({settings_diff(old, params)}; see {meta_path}); pass '
            'overwrite=True (--overwrite) or use another output folder')
    plan = _plan(sizes)
    stale = _claim(out_dir, plan)
    if osp.isfile(meta_path):
        os.remove(meta_path)  # unfinished from here on

    t0 = time.perf_counter()
    splits_meta = {split: _write_split(out_dir, split, n, seed, cfg, verbose)
                   for split, n in sizes.items()}
    _remove_stale(out_dir, stale)
    seconds = time.perf_counter() - t0
    meta = dict(params=params, classes=list(cfg.classes), splits=splits_meta)
    meta = write_record(meta_path, meta, WRITER, _check_meta,
                        what='the meta.json of a generated dataset',
                        hint='another output folder', indent=1, end='')
    _write_manifest(out_dir, plan)
    if verbose:
        total = sum(sizes.values())
        print(f'{out_dir}: wrote {total} images in {seconds:.1f} s '
              f'({total / max(seconds, 1e-9):.0f} images/s)')
    return dict(meta, root=out_dir, skipped=False, seconds=seconds)
