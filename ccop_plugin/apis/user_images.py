"""Image files of a user's dataset: found, decoded as training will see
them (EXIF orientation applied; grayscale, RGBA and 16-bit made 8-bit RGB)
and linked into the job's data folder in the frame of their annotations.
"""
import os
import os.path as osp
from typing import Dict, List, Tuple

#: File name endings read as images (case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')


class UserDataError(ValueError):
    """A file of the user's dataset is unusable (the message names it)."""


def find_images(folders) -> List[str]:
    """Image files under ``folders`` (recursive, sorted per folder, each
    file once)."""
    out, seen = [], set()
    for folder in folders:
        if not osp.isdir(folder):
            raise UserDataError(f'{folder}: no such image folder')
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = osp.realpath(osp.join(root, name))
                if (name.lower().endswith(IMAGE_EXTENSIONS)
                        and path not in seen):
                    seen.add(path)
                    out.append(path)
    return out


def decode_image(path: str, scale: int):
    """RGB PIL image of ``path``: EXIF orientation applied, shrunk so that
    its longer side is at most ``scale``."""
    from PIL import Image, ImageOps
    with Image.open(path) as im:
        if im.format == 'JPEG':
            im.draft('RGB', (scale, scale))  # decode at a reduced size
        im = ImageOps.exif_transpose(im)
        if im.mode in ('I;16', 'I;16B', 'I', 'F'):
            import numpy as np
            a = np.asarray(im, dtype=np.float64)
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) * (255.0 / (hi - lo or 1.0))
            im = Image.fromarray(a.astype(np.uint8))
        im = im.convert('RGB')
        w, h = im.size
        f = scale / max(w, h)
        if f < 1:
            im = im.resize((max(1, round(w * f)), max(1, round(h * f))),
                           Image.BILINEAR)
        return im


def stored_and_shown_size(path: str) -> Tuple[Tuple[int, int],
                                               Tuple[int, int]]:
    """(stored size, size after EXIF orientation) of an image file."""
    from PIL import Image
    with Image.open(path) as im:
        size = im.size
        orient = im.getexif().get(0x0112, 1)
    return size, (size[::-1] if orient in (5, 6, 7, 8) else size)


def link_image(src: str, dst: str, ann: str, im: Dict) -> None:
    """``dst``: ``src`` as mmdet will decode it in the annotations' frame."""
    from PIL import Image
    stored, shown = stored_and_shown_size(src)
    want = (im.get('width'), im.get('height'))
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if osp.lexists(dst):
        os.remove(dst)
    if None in want or want == shown:
        im['width'], im['height'] = shown  # OpenCV applies the rotation
        os.symlink(src, dst)
    elif want == stored:  # annotated on the stored pixels: drop the EXIF
        with Image.open(src) as pil:
            pil.convert('RGB').save(dst + '.png')
        os.replace(dst + '.png', dst)
    else:
        raise UserDataError(
            f'{ann}: image {im["file_name"]!r} is {want[0]}x{want[1]} in the '
            f'file but {shown[0]}x{shown[1]} on disk ({src})')
