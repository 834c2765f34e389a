"""Images as users have them: grayscale, with alpha, palette, 16-bit,
CMYK, EXIF-rotated, in several formats.

The proposal tool and the pre-training pipeline must see the same picture:
three 8-bit BGR channels, turned upright by the EXIF orientation, so that
boxes computed on one fit the other. Crafted with PIL in the test."""
import json

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image, ImageDraw, ImageOps

from ccop_plugin.proposals import RunOptions, get_preset, run_proposals
from ccop_plugin.proposals.search import read_image
from ccop_plugin.proposals.sources import list_image_dir

H, W = 40, 60  # stored size of the small images


def _rgb(h=H, w=W, seed=0):
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    img[:h // 4, :w // 3] = (255, 0, 0)  # marks the stored top-left corner
    return img


def _exif(orientation):
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def _write_all(d):
    rgb = _rgb()
    gray = rgb[..., 0]
    Image.fromarray(gray).save(d / 'gray.png')
    Image.fromarray(gray).save(d / 'gray.jpg')
    alpha = np.full((H, W), 100, np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), 'RGBA').save(d / 'rgba.png')
    Image.fromarray(np.dstack([gray, alpha]), 'LA').save(d / 'la.png')
    Image.fromarray(rgb).convert('P').save(d / 'palette.png')
    Image.fromarray(gray.astype(np.uint16) * 257).save(d / 'gray16.png')
    Image.fromarray(rgb).convert('CMYK').save(d / 'cmyk.jpg')
    for o in (3, 6, 8):
        Image.fromarray(rgb).save(d / f'exif{o}.jpg', exif=_exif(o),
                                  quality=95)
        Image.fromarray(rgb).save(d / f'exif{o}.png', exif=_exif(o))
    for ext in ('webp', 'bmp', 'tif'):
        Image.fromarray(rgb).save(d / f'rgb.{ext}')


NAMES = ['gray.png', 'gray.jpg', 'rgba.png', 'la.png', 'palette.png',
         'gray16.png', 'cmyk.jpg', 'exif3.jpg', 'exif6.jpg', 'exif8.jpg',
         'exif3.png', 'exif6.png', 'exif8.png', 'rgb.webp', 'rgb.bmp',
         'rgb.tif']


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('user_images')
    _write_all(d)
    return d


def _pipeline_load(path):
    """The pre-training pipeline's loader, as the proposal configs use it."""
    from mmpretrain.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    return load(dict(img_path=str(path)))['img']


@pytest.mark.parametrize('name', NAMES)
def test_proposals_and_training_read_the_same_picture(image_dir, name):
    path = image_dir / name
    seen_by_proposals = read_image(str(path))
    seen_by_training = _pipeline_load(path)
    assert seen_by_proposals.dtype == np.uint8
    assert seen_by_proposals.ndim == 3 and seen_by_proposals.shape[2] == 3
    np.testing.assert_array_equal(seen_by_proposals, seen_by_training)
    with Image.open(path) as im:
        w, h = ImageOps.exif_transpose(im).size  # the upright size
    assert seen_by_proposals.shape[:2] == (h, w)


@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_exif_orientation_turns_the_picture_upright(image_dir, orientation):
    """Lossless PNGs: the pixels are exactly PIL's upright picture."""
    path = image_dir / f'exif{orientation}.png'
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert('RGB'))
    np.testing.assert_array_equal(read_image(str(path)), upright[..., ::-1])
    if orientation in (6, 8):
        assert read_image(str(path)).shape[:2] == (W, H)


def _scene(h, w, seed):
    """Smooth background and a few filled shapes (selective search finds
    regions on it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.dstack([xx * 200 // w, yy * 200 // h, np.full((h, w), 90)])
    im = Image.fromarray(bg.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(5):
        x0, y0 = rng.integers(0, w - 30), rng.integers(0, h - 30)
        sx, sy = rng.integers(15, 30, 2)
        draw.rectangle([x0, y0, x0 + sx, y0 + sy],
                       fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return im


def test_proposals_of_a_rotated_photo_fit_its_training_view(tmp_path):
    """An EXIF-rotated JPEG (stored 160 wide x 96 high, shown 96 x 160),
    a grayscale and an RGBA image: the proposal file's sizes are the
    upright ones, its boxes lie inside the picture the pipeline loads, and
    the dataset keeps every box (no clipping, no whole-image fallback)."""
    from mmpretrain.registry import DATASETS
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    _scene(96, 160, 0).save(img_dir / 'rotated.jpg', exif=_exif(6),
                            quality=95)
    _scene(96, 128, 1).convert('L').save(img_dir / 'gray.png')
    _scene(80, 100, 2).convert('RGBA').save(img_dir / 'rgba.png')
    out = tmp_path / 'proposals.json'
    run_proposals(list_image_dir(str(img_dir)), str(img_dir),
                  get_preset('ccop'), str(tmp_path / 'state'),
                  RunOptions(out=str(out), workers=1, progress=False,
                             log=lambda *a: None))
    data = json.loads(out.read_text())
    sizes = {im['file_name']: (im['height'], im['width'])
             for im in data['images']}
    assert sizes['rotated.jpg'] == (160, 96)  # upright: taller than wide
    names = {im['id']: im['file_name'] for im in data['images']}
    lowest = 0.0
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        hh, ww = sizes[names[a['image_id']]]
        assert x >= 0 and y >= 0 and x + w <= ww and y + h <= hh, a
        if names[a['image_id']] == 'rotated.jpg':
            lowest = max(lowest, y + h)
    assert lowest > 96  # boxes use the upright height, not the stored one

    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadProposals', max_num=1000, log_interval=0)]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ds = DATASETS.build(dict(
            type='ProposalImageDataset', ann_file=str(out),
            data_prefix=dict(img_path=str(img_dir)), pipeline=pipeline))
        for i in range(len(ds)):
            r = ds[i]
            assert r['img_shape'][:2] == sizes[osp_name(r['img_path'])]
            assert r['num_dropped_proposals'] == 0
            assert not r['proposal_fallback']
            assert r['num_proposals'] > 0
    assert ds.proposal_stats['size_mismatch'] == 0


def osp_name(path):
    return path.replace('\\', '/').rsplit('/', 1)[-1]
