"""Structure checks of a proposal file's ``images`` and ``annotations``
entries (the slow path that names the culprit). Only
:mod:`ccop_plugin.proposals.proposal_file`, the format's one reader, uses
them."""
import ntpath
import posixpath
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

NUMBER_TYPES = {int, float}
_FIX_HINT = ('fix or remove these annotations (tools/selective_search.py '
             'writes valid files)')


def leaves_folder(name: str) -> bool:
    """``file_name`` is absolute (POSIX or Windows) or climbs out of the
    image folder with ``..``; ``a/../b.jpg`` and ``./b.jpg`` stay inside."""
    if posixpath.isabs(name) or ntpath.isabs(name) or ntpath.splitdrive(
            name)[0]:
        return True
    norm = posixpath.normpath(name.replace('\\', '/'))
    return norm == '..' or norm.startswith('../')


def to_float(v) -> float:
    """A JSON number as a float; an integer no float holds is +-inf (a
    non-finite coordinate, dropped like NaN) instead of an OverflowError."""
    try:
        return float(v)
    except OverflowError:
        return float('inf') if v > 0 else float('-inf')


def _annotation_problem(ann: Any, id_to_pos: Dict[Any, int]) -> Optional[str]:
    """What is wrong with one annotation's structure, or None."""
    if not isinstance(ann, dict):
        return f'is a {type(ann).__name__}, not a dict'
    if 'bbox' not in ann:
        return 'has no "bbox"'
    b = ann['bbox']
    if not isinstance(b, list) or len(b) != 4 or not all(
            type(v) in NUMBER_TYPES for v in b):
        return ('"bbox" must be a list of 4 numbers [x, y, w, h], got '
                f'{b!r:.60}')
    iid = ann.get('image_id')
    try:
        known = iid in id_to_pos
    except TypeError:
        known = False
    if not known:
        return f'"image_id" {iid!r:.40} is not an id of "images"'
    return None


def annotation_error(path: str, anns: list, id_to_pos: Dict[Any, int]
                      ) -> ValueError:
    """The error for the malformed annotations of ``anns`` (slow path)."""
    bad = []
    for k, ann in enumerate(anns):
        problem = _annotation_problem(ann, id_to_pos)
        if problem is not None:
            bad.append((k, ann, problem))
    k, ann, problem = bad[0]

    def label(k, ann):
        aid = ann.get('id') if isinstance(ann, dict) else None
        return (f'annotation id {aid!r:.40} (annotations[{k}])'
                if aid is not None else f'annotations[{k}]')

    more = ''
    if len(bad) > 1:
        more = (f'; {len(bad) - 1} more malformed, e.g. ' + ', '.join(
            label(k2, a2) for k2, a2, _ in bad[1:4]))
    return ValueError(f'{path}: {label(k, ann)} {problem}{more}; {_FIX_HINT}')


def read_images(path: str, images: Any
                 ) -> Tuple[List[str], Dict[Any, int], np.ndarray]:
    """Names, ``id -> position`` and ``(n, 2)`` float ``(h, w)`` (NaN when
    unknown) of a COCO ``images`` list."""
    if not isinstance(images, list):
        raise ValueError(f'{path}: expected a COCO-style dict with an '
                         '"images" list')
    names, id_to_pos = [], {}
    sizes = np.full((len(images), 2), np.nan)
    for k, im in enumerate(images):
        if (not isinstance(im, dict) or 'id' not in im
                or not isinstance(im.get('file_name'), str)
                or not im['file_name']):
            raise ValueError(f'{path}: images[{k}] needs an "id" and a '
                             f'"file_name" string, got {im!r:.120}')
        iid = im['id']
        try:
            dup = iid in id_to_pos
        except TypeError:
            raise ValueError(f'{path}: images[{k}] has an "id" of type '
                             f'{type(iid).__name__}; use a number') from None
        if dup:
            raise ValueError(f'{path}: duplicate image id {iid!r} '
                             f'(images[{id_to_pos[iid]}] and images[{k}])')
        name = im['file_name']
        if leaves_folder(name):
            raise ValueError(
                f'{path}: images[{k}] file_name {name!r} leaves the image '
                'folder (absolute or climbing out with ".."); file_name must '
                'be the image path relative to the image folder')
        id_to_pos[iid] = k
        names.append(name)
        h, w = im.get('height'), im.get('width')
        if (type(h) in NUMBER_TYPES and type(w) in NUMBER_TYPES and h > 0
                and w > 0):
            for key, v in (('height', h), ('width', w)):
                if to_float(v) == float('inf'):
                    raise ValueError(
                        f'{path}: images[{k}] ({name!r}) has a "{key}" too '
                        f'large for a number ({str(v)[:20]}...)')
            sizes[k] = (h, w)
    if len(set(names)) != len(names):
        seen = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise ValueError(f'{path}: duplicate file_name {dup!r} in "images"')
    return names, id_to_pos, sizes
