"""A user's dataset for the main job: checked, indexed and laid out as the
synthetic one (``<work_dir>/data``), so that every later stage reads it the
same way.

Input: one or more folders of unlabeled images (searched recursively) and
COCO-format labelled splits (train, val, optionally test) with their image
folders. :func:`prepare_user_data` writes

- ``images/unlabeled/NNNNNN.jpg``: every unlabeled image decoded once
  (EXIF orientation applied, grayscale / RGBA / 16-bit made 8-bit RGB) and
  shrunk to the job's image scale; ``annotations/unlabeled.json`` lists them
  with their source (images only: pre-training never reads a label, and
  images that are also labelled are fine);
- ``annotations/instances_{train,val,test}.json``: the splits with one
  category list (the train file's, by id) in every split, so that labels
  mean the same class in training and evaluation; ``images/<split>/`` links
  to the user's files (a copy without EXIF rotation where the annotations
  were made on the stored pixels).

Bad input is a :class:`UserDataError` whose message is one line naming the
file and the problem.
"""
import hashlib
import os
import os.path as osp
import statistics
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

from ccop_plugin.utils.coco_file import read_coco
from ccop_plugin.utils.fileio import atomic_write_json
from .job_config import MainJobConfig, log, resolve_device
from .user_images import (
    IMAGE_EXTENSIONS,
    UserDataError,
    decode_image,
    find_images,
    link_image,
)

#: Version of the layout written here (part of the data stage's key).
FORMAT_VERSION = 1
#: Largest image scale chosen from the data (``--img-scale`` overrides).
MAX_SCALE = dict(cpu=512, cuda=1024)
MIN_SCALE = 64
#: Fine-tuning batch picked on a GPU (the config's 4 on a CPU).
GPU_FINETUNE_BATCH = 8
SPLIT_FILES = dict(train='annotations/instances_train.json',
                   val='annotations/instances_val.json',
                   test='annotations/instances_test.json')


def labelled_splits(cfg: MainJobConfig) -> Dict[str, Tuple[str, str]]:
    """``{split: (annotation file, image folder)}`` of the user's data."""
    out = dict(train=(cfg.train_ann, cfg.train_images),
               val=(cfg.val_ann, cfg.val_images))
    if cfg.test_ann:
        out['test'] = (cfg.test_ann, cfg.test_images)
    return out


def _load(path: str) -> Dict:
    try:
        return read_coco(path)
    except (FileNotFoundError, ValueError) as e:
        raise UserDataError(str(e)) from None


def _fingerprint(cfg: MainJobConfig) -> str:
    """A hash of the annotation files' content and of the image folders'
    listing (names, sizes, modification times)."""
    h = hashlib.sha256()
    for ann, images in labelled_splits(cfg).values():
        with open(ann, 'rb') as f:
            h.update(hashlib.sha256(f.read()).digest())
        h.update(osp.abspath(images).encode())
    for path in find_images(cfg.unlabeled):
        st = os.stat(path)
        h.update(f'{path}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode())
    return h.hexdigest()[:16]


def data_settings(cfg: MainJobConfig) -> Dict:
    """The data stage's settings on user data (its key)."""
    return dict(source='user', format_version=FORMAT_VERSION,
                unlabeled=[osp.abspath(d) for d in cfg.unlabeled],
                splits={k: [osp.abspath(a), osp.abspath(i)]
                        for k, (a, i) in labelled_splits(cfg).items()},
                img_scale=cfg.img_scale, content=_fingerprint(cfg))


def choose_scale(train_ann: str, device: str) -> int:
    """The median longer side of the train images, at most
    ``MAX_SCALE[device]``, at least ``MIN_SCALE``, a multiple of 32."""
    data = _load(train_ann)
    sides = [max(im.get('width') or 0, im.get('height') or 0)
             for im in data['images']]
    sides = [s for s in sides if s > 0]
    med = statistics.median(sides) if sides else MAX_SCALE[device]
    scale = int(min(med, MAX_SCALE[device]) // 32 * 32)
    return max(MIN_SCALE, scale)


def resolve_user_config(cfg: MainJobConfig) -> MainJobConfig:
    """The settings taken from the data and the machine: image scale,
    fine-tuning batch (on a GPU), pre-training batch at most the number
    of unlabeled images (the loader drops an incomplete batch).

    Raises:
        UserDataError: an annotation file is missing or unreadable.
    """
    for ann, images in labelled_splits(cfg).values():
        _load(ann)
        if not osp.isdir(images):
            raise UserDataError(f'{images}: no such image folder (images '
                                f'of {ann})')
    device = resolve_device(cfg.device)
    changes = {}
    if cfg.img_scale is None:
        changes['img_scale'] = choose_scale(cfg.train_ann, device)
        log(f'image scale {changes["img_scale"]} px (longer side; median '
            f'of the train images, at most {MAX_SCALE[device]} on '
            f'{device}; --img-scale to change)')
    if cfg.finetune_batch is None and device == 'cuda':
        changes['finetune_batch'] = GPU_FINETUNE_BATCH
    num = len(find_images(cfg.unlabeled))
    if num == 0:
        raise UserDataError(f'{", ".join(cfg.unlabeled)}: no images '
                            f'({", ".join(IMAGE_EXTENSIONS)}) found')
    from mmengine.dist import get_world_size
    per_rank = num // get_world_size()  # the images each process reads
    if per_rank < cfg.pretrain_batch:  # the loader drops a partial batch
        changes['pretrain_batch'] = max(1, per_rank)
        log(f'pre-training batch {changes["pretrain_batch"]}: only {num} '
            'unlabeled images')
    return replace(cfg, **changes)


# ------------------------------------------------------------ unlabeled

def _prepare_unlabeled(cfg: MainJobConfig, data_root: str) -> Dict:
    paths = find_images(cfg.unlabeled)
    if not paths:
        raise UserDataError(f'{", ".join(cfg.unlabeled)}: no images '
                            f'({", ".join(IMAGE_EXTENSIONS)}) found')
    out_dir = osp.join(data_root, 'images', 'unlabeled')
    os.makedirs(out_dir, exist_ok=True)
    images, skipped = [], []
    for n, path in enumerate(paths, 1):
        name = f'{n:06d}.jpg'
        try:
            im = decode_image(path, cfg.img_scale)
        except Exception as e:  # an unreadable file is skipped, not fatal
            skipped.append(path)
            log(f'unlabeled image skipped: {path} ({type(e).__name__}: '
                f'{e})')
            continue
        im.save(osp.join(out_dir, name), quality=95)
        images.append(dict(id=n, file_name=name, width=im.size[0],
                           height=im.size[1], source=path))
    if not images:
        raise UserDataError(f'{cfg.unlabeled[0]}: none of the {len(paths)} '
                            'images could be decoded')
    atomic_write_json(osp.join(data_root, 'annotations', 'unlabeled.json'),
                      dict(images=images, annotations=[], categories=[]))
    return dict(num=len(images), skipped=skipped)


# ------------------------------------------------------------- labelled

def _has_mask(a: Dict) -> bool:
    seg = a.get('segmentation')
    if isinstance(seg, dict):
        return bool(seg.get('counts'))
    return isinstance(seg, list) and any(len(p) >= 6 for p in seg
                                         if isinstance(p, list))


def _prepare_split(split: str, ann: str, img_dir: str, data_root: str,
                   categories: List[Dict]) -> Dict:
    data = _load(ann)
    names = {c['id']: c['name'] for c in categories}
    own = {c['id']: c['name'] for c in data.get('categories') or []}
    for cid, name in own.items():
        if cid in names and names[cid] != name:
            raise UserDataError(
                f'{ann}: category id {cid} is {name!r} here but '
                f'{names[cid]!r} in the train file')
    ids = set()
    images = []
    for k, im in enumerate(data['images']):
        if not (isinstance(im, dict) and 'id' in im
                and isinstance(im.get('file_name'), str)):
            raise UserDataError(f'{ann}: images[{k}] needs an "id" and a '
                                '"file_name"')
        if im['id'] in ids:
            raise UserDataError(f'{ann}: image id {im["id"]!r} is listed '
                                'twice')
        ids.add(im['id'])
        src = osp.realpath(osp.join(img_dir, im['file_name']))
        if not osp.isfile(src):
            raise UserDataError(f'{ann}: image {im["file_name"]!r} not found '
                                f'in {img_dir}')
        im = dict(im)
        link_image(src, osp.join(data_root, 'images', split,
                                  im['file_name']), ann, im)
        images.append(im)
    anns = []
    for k, a in enumerate(data.get('annotations') or []):
        box = a.get('bbox') if isinstance(a, dict) else None
        if not (isinstance(box, list) and len(box) == 4):
            raise UserDataError(f'{ann}: annotations[{k}] has no "bbox" '
                                '[x, y, w, h]')
        if a.get('image_id') not in ids:
            raise UserDataError(f'{ann}: annotations[{k}] refers to image '
                                f'id {a.get("image_id")!r}, not in "images"')
        if a.get('category_id') not in names:
            raise UserDataError(
                f'{ann}: annotations[{k}] has category_id '
                f'{a.get("category_id")!r}, which the train file does not '
                'list')
        a = dict(a, iscrowd=a.get('iscrowd', 0))
        a.setdefault('id', k + 1)
        a.setdefault('area', float(box[2]) * float(box[3]))
        anns.append(a)
    atomic_write_json(osp.join(data_root, SPLIT_FILES[split]),
                      dict(images=images, annotations=anns,
                           categories=categories))
    return dict(images=len(images), annotations=len(anns),
                masks=all(_has_mask(a) for a in anns
                          if not a.get('iscrowd')))


def prepare_user_data(cfg: MainJobConfig, data_root: str) -> Dict:
    """Write the user's dataset in the main job's layout (module doc).

    Returns:
        The data stage's record: ``data_root``, ``splits`` (images per
        split), ``classes``, ``masks`` (every labelled object has a
        segmentation: Mask R-CNN, else Faster R-CNN), ``img_scale`` and
        the ``skipped`` unlabeled files.

    Raises:
        UserDataError: naming the file and the problem.
    """
    splits = labelled_splits(cfg)
    train = _load(cfg.train_ann)
    categories = sorted(
        ({k: c[k] for k in ('id', 'name', 'supercategory') if k in c}
         for c in train.get('categories') or []), key=lambda c: c['id'])
    if not categories:
        raise UserDataError(f'{cfg.train_ann}: no "categories" listed')
    out = {}
    for split, (ann, img_dir) in splits.items():
        out[split] = _prepare_split(split, ann, img_dir, data_root,
                                    categories)
        if split == 'train' and not out[split]['annotations']:
            raise UserDataError(f'{ann}: no annotations to train on')
        log(f'data: {split}: {out[split]["images"]} images, '
            f'{out[split]["annotations"]} objects ({ann})')
    unl = _prepare_unlabeled(cfg, data_root)
    log(f'data: unlabeled: {unl["num"]} images at most {cfg.img_scale} px'
        + (f', {len(unl["skipped"])} skipped' if unl['skipped'] else ''))
    return dict(data_root=data_root,
                splits=dict(unlabeled=unl['num'],
                            **{k: v['images'] for k, v in out.items()}),
                classes=[c['name'] for c in categories],
                masks=all(v['masks'] for v in out.values()),
                img_scale=cfg.img_scale, skipped=unl['skipped'])


def user_detector_config(cfg: MainJobConfig, data: Dict,
                         config_path: str):
    """The fine-tuning config on user data: its classes, Mask R-CNN or
    (no masks) Faster R-CNN, the image scale, per-category bbox AP, the
    batch and the launcher.

    Args:
        data: The data stage's record (:func:`prepare_user_data`).
        config_path: The packaged Mask R-CNN config.
    """
    from mmengine.config import Config

    from .finetune import boxes_only, set_data_root, set_img_scale
    from .label_space import apply_label_space
    det = Config.fromfile(config_path)
    set_data_root(det, cfg.data_root)
    apply_label_space(det, data['classes'])
    if not data['masks']:
        boxes_only(det)
    set_img_scale(det, cfg.img_scale)
    ev = det.val_evaluator
    det.val_evaluator = [ev, dict(type='CocoMetric', ann_file=ev.ann_file,
                                  metric='bbox', classwise=True,
                                  prefix=PER_CLASS_PREFIX)]
    det.test_evaluator = det.val_evaluator
    if cfg.finetune_batch:
        det.train_dataloader.batch_size = cfg.finetune_batch
    det.launcher = cfg.launcher
    return det


#: Prefix of the per-category bbox AP metrics (``<prefix>/<name>_precision``)
PER_CLASS_PREFIX = 'per_class'


def per_class_ap(metrics: Dict[str, float]) -> Dict[str, float]:
    """``{category: bbox AP}`` from a run's metrics (NaN: no object)."""
    pre, end = PER_CLASS_PREFIX + '/', '_precision'
    return {k[len(pre):-len(end)]: v for k, v in metrics.items()
            if k.startswith(pre) and k.endswith(end)}


def unlabeled_sources(data_root: str) -> Optional[List[str]]:
    """The source file of each unlabeled copy (user data), else None."""
    path = osp.join(data_root, 'annotations', 'unlabeled.json')
    src = [im.get('source') for im in read_coco(path)['images']]
    return src if all(src) else None
