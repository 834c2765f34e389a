"""The label space of a fine-tuning run, taken from its annotation files.

mmdet's ``CocoDataset`` keeps the categories of the annotation file whose
names are in the dataset's ``metainfo['classes']`` (default: COCO's 80) and
numbers them in the file's category order; ``CocoMetric`` maps a predicted
label back through the same list. A config whose ``num_classes`` is larger
than that list trains, then fails in evaluation (``IndexError`` at
``cat_ids[label]``); one whose splits list the categories in another order
silently mislabels. :func:`apply_label_space` makes the config agree with
the train file: ``metainfo.classes`` of every split and ``num_classes`` of
every head become the train file's categories (those the config names, when
it names some of them), in the file's order.
"""
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config, ConfigDict

from ccop_plugin.utils.coco_file import read_categories

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: Dataset types whose label space this module derives (LVIS and
#: Cityscapes have their own category handling).
COCO_TYPES = ('CocoDataset', 'mmdet.CocoDataset')


def inner_dataset(ds: ConfigDict) -> ConfigDict:
    """The dataset under wrappers (RepeatDataset, ClassBalancedDataset)."""
    while 'dataset' in ds and isinstance(ds['dataset'], dict):
        ds = ds['dataset']
    return ds


def file_classes(ann_file: str,
                 wanted: Optional[Sequence[str]] = None) -> List[str]:
    """Category names of ``ann_file`` in its order (the labels mmdet
    assigns), restricted to ``wanted`` when given."""
    names = [c['name'] for c in read_categories(ann_file)]
    if wanted is not None:
        wanted = set(wanted)
        names = [n for n in names if n in wanted]
    return names


def _ann_path(ds: ConfigDict) -> Optional[str]:
    ann = ds.get('ann_file')
    if not ann:
        return None
    root = ds.get('data_root') or ''
    return ann if osp.isabs(ann) else osp.join(root, ann)


def _set_num_classes(model: ConfigDict, n: int) -> None:
    roi = model.get('roi_head') or {}
    for key in ('bbox_head', 'mask_head'):
        heads = roi.get(key)
        for h in (heads if isinstance(heads, list) else [heads]):
            if isinstance(h, dict) and 'num_classes' in h:
                h.num_classes = n
    for key in ('bbox_head', ):  # one-stage detectors
        h = model.get(key)
        if isinstance(h, dict) and 'num_classes' in h:
            h.num_classes = n


def apply_label_space(cfg: Config,
                      classes: Optional[Sequence[str]] = None
                      ) -> Optional[List[str]]:
    """Make ``cfg``'s classes and heads agree with its train annotations.

    Args:
        cfg: An mmdet config (changed in place).
        classes: The class names to use; None: the train file's categories
            that the config's train ``metainfo`` names, in the file's order
            (all of them when it names none of them: a config made for
            another dataset).

    Returns:
        The classes set, or None when the train file is not at hand or
        the train dataset is not a ``CocoDataset`` (the config is left as
        it is).

    Raises:
        ValueError: naming the file: a val / test file lacks some of the
            classes or lists them in another order (labels would mean other
            classes).
    """
    train = inner_dataset(cfg.train_dataloader.dataset)
    ann = _ann_path(train)
    if classes is None:
        if (train.get('type') not in COCO_TYPES or not ann
                or not osp.isfile(ann)):
            return None
        named = (train.get('metainfo') or {}).get('classes')
        # the config's classes select from the file; names of another
        # dataset (none in the file) give way to the file's
        classes = file_classes(ann, named) or file_classes(ann)
    classes = list(classes)
    for name in DATALOADERS:
        loader = cfg.get(name)
        if not loader or not loader.get('dataset'):
            continue
        ds = inner_dataset(loader.dataset)
        meta = dict(ds.get('metainfo') or {})
        if list(meta.get('classes') or ()) != classes:
            meta = dict(classes=tuple(classes))  # a palette for other names
            ds.metainfo = meta
        path = _ann_path(ds)
        if name != 'train_dataloader' and path and osp.isfile(path):
            got = file_classes(path, classes)
            if got != classes:
                missing = [c for c in classes if c not in got]
                raise ValueError(
                    f'{path}: its categories do not match the train file\'s '
                    + (f'(missing: {", ".join(missing)})' if missing else
                       '(listed in another order)') +
                    '; list the same categories in the same order in every '
                    'split')
    _set_num_classes(cfg.model, len(classes))
    return classes
