"""Image lists for the proposal tool: a folder, or a COCO annotation file."""
import hashlib
import os
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

from .proposal_file import read_proposal_file

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff', '.ppm', '.pgm')


class ImageEntry(NamedTuple):
    """One image of the run: its COCO ``id`` and ``file_name`` (relative)."""
    id: int
    file_name: str


def list_image_dir(img_dir: str,
                   extensions: Sequence[str] = IMAGE_EXTENSIONS
                   ) -> List[ImageEntry]:
    """All images under ``img_dir`` (recursive), sorted, ids ``1..N``.

    ``file_name`` is the POSIX path relative to ``img_dir``. Symbolic links
    to folders are followed, but no folder is listed twice: a link back to
    an ancestor (a loop) or a second link to the same folder is skipped, so
    every image appears once (under the first name in sorted walk order).
    """
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'image folder {img_dir!r} does not exist')
    exts = tuple(e.lower() for e in extensions)
    names = []
    seen = set()  # (st_dev, st_ino) of every folder listed
    for root, dirs, files in os.walk(img_dir, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []  # already listed under another name: skip subtree
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        rel_root = osp.relpath(root, img_dir)
        for f in files:
            if f.lower().endswith(exts) and not f.startswith('.'):
                rel = f if rel_root == '.' else osp.join(rel_root, f)
                names.append(rel.replace(os.sep, '/'))
    names.sort()
    if not names:
        raise ValueError(f'no images ({", ".join(exts)}) found under '
                         f'{img_dir!r}')
    return [ImageEntry(i + 1, n) for i, n in enumerate(names)]


def list_coco_images(ann_file: str) -> List[ImageEntry]:
    """The ``images`` of a COCO-style JSON (annotations are ignored).

    Order and ids are those of the file. The file is read and checked by
    :func:`ccop_plugin.proposals.proposal_file.read_proposal_file` (the
    reader of COCO-style image lists): ``ValueError`` naming the file on a
    missing ``images`` list, duplicate ids / file names, a ``file_name``
    leaving the image folder, or a file that is not UTF-8 JSON.
    """
    index = read_proposal_file(ann_file, with_boxes=False)
    entries = []
    for k, (iid, name) in enumerate(zip(index.ids, index.names)):
        if type(iid) is not int:
            raise ValueError(f'{ann_file}: images[{k}] has the "id" {iid!r}'
                             '; the proposal tool needs integer ids')
        entries.append(ImageEntry(iid, name))
    if not entries:
        raise ValueError(f'{ann_file}: the "images" list is empty')
    return entries


def list_images(img_dir: str, ann_file: Optional[str] = None,
                limit: Optional[int] = None) -> List[ImageEntry]:
    """Images of a run: from ``ann_file`` if given, else from ``img_dir``.

    ``limit`` keeps the first ``limit`` images; it must be >= 1.
    """
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit
                              or limit < 1):
        raise ValueError(f'--limit must be a positive number of images, got '
                         f'{limit!r} (leave it out to process all images)')
    entries = (list_coco_images(ann_file) if ann_file else
               list_image_dir(img_dir))
    if limit is not None:
        entries = entries[:limit]
    return entries


def shard_entries(entries: Sequence[ImageEntry], shard: Tuple[int, int]
                  ) -> List[Tuple[int, ImageEntry]]:
    """``(index, entry)`` pairs of shard ``i`` of ``n`` (every ``n``-th image).

    Striding (not blocks) balances shards when the list is sorted by folder.
    """
    i, n = shard
    return [(k, e) for k, e in enumerate(entries) if k % n == i]


def entries_digest(entries: Sequence[ImageEntry]) -> str:
    """SHA-1 of the ordered image list (detects a changed list on resume)."""
    h = hashlib.sha1()
    for e in entries:
        h.update(f'{e.id}\t{e.file_name}\n'.encode('utf-8'))
    return h.hexdigest()
