"""Checks of the image files a proposal dataset lists: missing or empty
files (a listing per folder, one ``stat`` per image), undecodable images and
header sizes (compared with the sizes in the proposal file)."""
import logging
import os
import os.path as osp
from collections import defaultdict
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log


def find_missing_files(img_dir: str, names: Sequence[str]) -> List[int]:
    """Positions of ``names`` (relative to ``img_dir``) that are no file.

    One directory listing per folder (cheap for 100k images in one folder);
    a name not in its listing is checked once more with ``isfile`` (case
    folding, links).
    """
    by_dir = defaultdict(list)
    for i, name in enumerate(names):
        d, base = osp.split(osp.join(img_dir, name))
        by_dir[d].append((i, base))
    missing = []
    for d, items in by_dir.items():
        try:
            present = set(os.listdir(d or '.'))
        except OSError:
            present = set()
        for i, base in items:
            if base not in present and not osp.isfile(osp.join(d, base)):
                missing.append(i)
    return sorted(missing)


def find_empty_files(img_dir: str, names: Sequence[str],
                     exclude: Sequence[int] = ()) -> List[int]:
    """Positions of ``names`` (relative to ``img_dir``) that are files of
    0 bytes (an interrupted copy; no decoder reads them). One ``stat`` per
    image; ``exclude`` (e.g. the missing ones) is not looked at."""
    skip = set(exclude)
    empty = []
    for i, name in enumerate(names):
        if i in skip:
            continue
        try:
            if os.stat(osp.join(img_dir, name)).st_size == 0:
                empty.append(i)
        except OSError:
            pass  # gone since it was listed: the load-time check sees it
    return empty


def image_problem(path: str) -> Optional[str]:
    """Why the local image ``path`` cannot be used (unreadable, empty, not
    decodable), or None (a remote path is not looked at)."""
    if '://' in path:
        return None
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        return f'cannot be read ({e.strerror or e})'
    if not data:
        return 'empty file (0 bytes)'
    import cv2
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return 'not a decodable image' if img is None else None


def image_size(path: str) -> Optional[tuple]:
    """``(height, width)`` of a local image from its header (PIL reads no
    pixels), or None when it cannot be read."""
    if '://' in path:
        return None
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
    except Exception:
        return None
    return int(h), int(w)


def _size_agrees(file_hw, real_hw) -> bool:
    # cv2 (the pipeline) turns an EXIF-rotated photo upright; PIL's header
    # size is the stored one: a swapped pair is the same image
    return tuple(file_hw) in (tuple(real_hw), tuple(real_hw[::-1]))


def check_images_exist(img_dir: str, names: List[str], ann_file: str,
                       missing_images: str) -> Tuple[List[str], int]:
    """``(names on disk, number skipped)`` of the images ``names`` (listed
    in ``ann_file``) under ``img_dir``; missing or empty files raise under
    ``missing_images='error'`` (one message naming the file and the first
    few images) and are skipped with a warning under ``'skip'``."""
    if '://' in img_dir:
        print_log(f'ProposalImageDataset: images under {img_dir} are not '
                  'checked for existence (remote storage)',
                  logger='current')
        return names, 0
    missing = find_missing_files(img_dir, names)
    empty = find_empty_files(img_dir, names, exclude=missing)
    if not missing and not empty:
        return names, 0
    parts = []
    for bad, how in ((missing, 'are missing'),
                     (empty, 'are empty files (0 bytes)')):
        if bad:
            first = ', '.join(repr(names[i]) for i in bad[:5])
            parts.append(f'{len(bad)} of {len(names)} images listed in '
                         f'{ann_file} {how} under {img_dir!r} '
                         f'(first: {first})')
    what = '; '.join(parts)
    if missing_images == 'error':
        error = FileNotFoundError if missing else ValueError
        raise error(
            f'{what}; fix data_root / data_prefix["img_path"] or the '
            'files, or set missing_images="skip" in the dataset config '
            'to train without them')
    print_log(f'ProposalImageDataset: skipped {what} '
              '(missing_images="skip")', logger='current',
              level=logging.WARNING)
    missing = missing + empty
    gone = set(missing)
    return [n for i, n in enumerate(names) if i not in gone], len(gone)
