"""COCO-format annotation files: the package's one reader, and its subset
writer.

Every module that reads a COCO file (the user's annotations, the generated
splits, proposal files, the label space, the figures) goes through
:func:`read_coco`, so a bad file gets the same one-line error naming it
wherever it is read. The synthetic generator
(:mod:`ccop_plugin.datagen.coco_writer`) writes the files; the entries of
an ``images`` or ``annotations`` list are checked by their readers (the
proposal index, the user-data import), which know what they need of them.
"""
import json
from typing import Dict, List, Sequence

from .fileio import atomic_write_json


def read_coco(path: str, categories: str = 'check') -> Dict:
    """The COCO file ``path`` as a dict, its layout checked.

    A JSON object (UTF-8) with an ``images`` list; ``annotations``, when
    present, a list; ``categories``: ``'check'`` (default) a list, when
    present, checked by :func:`check_categories`; ``'require'`` the same,
    and non-empty; ``'ignore'`` not read (a proposal file, whose readers
    use only its images and boxes).

    Raises:
        FileNotFoundError: no file at ``path`` (the message names it).
        ValueError: one line naming ``path`` and the problem.
    """
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path}: no such annotation file') from None
    except UnicodeDecodeError as e:
        raise ValueError(f'{path}: not UTF-8 text (byte {e.object[e.start]:#x}'
                         f' at offset {e.start}); a JSON file is UTF-8'
                         ) from None
    except OSError as e:
        raise ValueError(f'{path}: not readable ({e.strerror or e})'
                         ) from None
    except ValueError as e:  # JSONDecodeError; a too long integer literal
        raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(data, dict) or not isinstance(data.get('images'),
                                                    list):
        raise ValueError(f'{path}: not a COCO file (expected a JSON object '
                         'with an "images" list)')
    if not isinstance(data.get('annotations', []), list):
        raise ValueError(f'{path}: "annotations" is not a list')
    if categories not in ('check', 'require', 'ignore'):
        raise ValueError(f'categories must be check, require or ignore, '
                         f'got {categories!r}')
    if categories == 'ignore':
        return data
    cats = data.get('categories')
    if cats is not None and not isinstance(cats, list):
        raise ValueError(f'{path}: "categories" is not a list')
    if categories == 'require' and not cats:
        raise ValueError(f'{path}: no "categories" list; a COCO file '
                         'names its categories with ids')
    check_categories(cats or [], path)
    return data


def read_categories(path: str) -> List[Dict]:
    """The checked ``categories`` of the COCO file ``path``, in its order
    (:func:`read_coco` with ``categories='require'``)."""
    return list(read_coco(path, categories='require')['categories'])


def check_categories(cats: Sequence, where: str) -> List[Dict]:
    """Each category has an integer ``id`` and a ``name``, both unique;
    ``where`` names the file in the error."""
    ids, names = set(), set()
    for k, c in enumerate(cats):
        if not (isinstance(c, dict) and type(c.get('id')) is int
                and isinstance(c.get('name'), str) and c['name']):
            raise ValueError(f'{where}: categories[{k}] needs an integer '
                             f'"id" and a "name", got {c!r}')
        for seen, key in ((ids, 'id'), (names, 'name')):
            if c[key] in seen:
                raise ValueError(f'{where}: category {key} {c[key]!r} is '
                                 'listed twice')
            seen.add(c[key])
    return list(cats)


def write_first_images(src: str, dst: str, num_images: int) -> Dict:
    """A COCO file of the first ``num_images`` images of ``src`` (in its
    order) and their annotations, written atomically to ``dst``; the
    categories and everything else are kept. The synthetic generator draws
    every image from (seed, split, index) alone, so the first N images of
    a larger train split are the train split of N images.

    Returns:
        dict: ``num_images`` and ``num_annotations`` of the subset.

    Raises:
        ValueError: ``src`` is not a COCO file, or holds fewer images.
    """
    coco = read_coco(src)
    images = coco['images']
    if not 1 <= num_images <= len(images):
        raise ValueError(f'{src}: asked for the first {num_images} images, '
                         f'it holds {len(images)}')
    keep = images[:num_images]
    ids = {im.get('id') for im in keep if isinstance(im, dict)}
    anns = [a for a in coco.get('annotations', [])
            if isinstance(a, dict) and a.get('image_id') in ids]
    atomic_write_json(dst, dict(coco, images=keep, annotations=anns))
    return dict(num_images=len(keep), num_annotations=len(anns))
