"""Synthetic COCO shapes: determinism, mask/box agreement, file layout."""
import filecmp
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ccop_plugin.datagen import (
    CLASSES,
    SceneConfig,
    generate_synthetic_coco,
    image_rng,
    make_scene,
    render_scene,
    write_scenes,
)
from ccop_plugin.datagen.coco_writer import is_complete

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_unlabeled=4, num_train=6, num_val=3, img_size=96)


def _all_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [osp.relpath(osp.join(d, f), root) for f in files]
    return sorted(out)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synth') / 'a')
    meta = generate_synthetic_coco(root, seed=3, **SMALL)
    return root, meta


def test_layout_and_counts(dataset):
    root, meta = dataset
    assert meta['classes'] == list(CLASSES)
    unl = json.load(open(osp.join(root, 'annotations/unlabeled.json')))
    assert len(unl['images']) == 4 and unl['annotations'] == []
    for split, n in (('train', 6), ('val', 3)):
        coco = json.load(
            open(osp.join(root, f'annotations/instances_{split}.json')))
        assert len(coco['images']) == n
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3, 4, 5, 6]
        assert len(coco['annotations']) >= n  # >= 1 object per image
        for img in coco['images']:
            assert osp.isfile(osp.join(root, 'images', split,
                                       img['file_name']))
            assert (img['width'], img['height']) == (96, 96)


def test_masks_and_boxes_agree(dataset):
    root, _ = dataset
    coco = json.load(open(osp.join(root, 'annotations/instances_train.json')))
    per_image = {}
    for ann in coco['annotations']:
        m = mask_utils.decode(ann['segmentation'])
        assert m.shape == (96, 96)
        ys, xs = np.nonzero(m)
        box = [xs.min(), ys.min(), xs.max() - xs.min() + 1,
               ys.max() - ys.min() + 1]
        np.testing.assert_allclose(ann['bbox'], box)
        assert ann['area'] == m.sum() > 0
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 6
        per_image.setdefault(ann['image_id'], []).append(m)
    # visible masks of one image never overlap (occluded parts removed)
    for masks in per_image.values():
        assert np.stack(masks).sum(0).max() == 1


def test_deterministic_by_seed(tmp_path, dataset):
    root, _ = dataset
    again = str(tmp_path / 'b')
    generate_synthetic_coco(again, seed=3, **SMALL)
    files = _all_files(root)
    assert files == _all_files(again)
    match, mismatch, errors = filecmp.cmpfiles(root, again, files,
                                               shallow=False)
    assert not mismatch and not errors
    other = str(tmp_path / 'c')
    generate_synthetic_coco(other, seed=4, **SMALL)
    assert not filecmp.cmp(osp.join(root, 'images/train/000001.png'),
                           osp.join(other, 'images/train/000001.png'),
                           shallow=False)


def test_render_scene_pure_and_independent_of_split_size():
    cfg = SceneConfig(height=64, width=80)
    img1, inst1 = render_scene(image_rng(0, 'train', 5), cfg)
    img2, inst2 = render_scene(image_rng(0, 'train', 5), cfg)
    assert img1.shape == (64, 80, 3) and img1.dtype == np.uint8
    np.testing.assert_array_equal(img1, img2)
    assert [lab for lab, _ in inst1] == [lab for lab, _ in inst2]
    for (_, a), (_, b) in zip(inst1, inst2):
        np.testing.assert_array_equal(a, b)
    img3, _ = render_scene(image_rng(0, 'val', 5), cfg)
    assert not np.array_equal(img1, img3)


def test_occlusion_drops_mostly_hidden():
    """Same drawings (same streams); only the visibility rule differs."""
    kw = dict(height=64, width=64, min_objects=5, max_objects=6, min_area=1)
    strict = SceneConfig(min_visible=0.999, **kw)
    loose = SceneConfig(min_visible=0.0, **kw)
    n_strict = n_loose = 0
    for i in range(20):
        img_s, inst_s = render_scene(image_rng(1, 'train', i), strict)
        img_l, inst_l = render_scene(image_rng(1, 'train', i), loose)
        np.testing.assert_array_equal(img_s, img_l)
        n_strict += len(inst_s)
        n_loose += len(inst_l)
        # the last painted object is never occluded
        assert inst_s and np.array_equal(inst_s[-1][1], inst_l[-1][1])
    assert n_strict < n_loose


def test_skip_when_complete_and_mismatch(tmp_path):
    root = str(tmp_path / 'd')
    first = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not first['skipped']
    mtime = os.stat(osp.join(root, 'images/train/000001.png')).st_mtime_ns
    second = generate_synthetic_coco(root, seed=0, **SMALL)
    assert second['skipped']
    assert os.stat(osp.join(root, 'images/train/000001.png')
                   ).st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match='other parameters'):
        generate_synthetic_coco(root, seed=1, **SMALL)
    # an incomplete dataset (missing image) is regenerated
    os.remove(osp.join(root, 'images/val/000002.png'))
    third = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not third['skipped']
    assert osp.isfile(osp.join(root, 'images/val/000002.png'))
    assert not [f for f in _all_files(root) if f.endswith('.tmp')]
    # overwriting with fewer images leaves no stale files behind
    generate_synthetic_coco(root, seed=0, overwrite=True,
                            **dict(SMALL, num_unlabeled=2))
    assert sorted(os.listdir(osp.join(root, 'images/unlabeled'))) == [
        '000001.png', '000002.png']


def test_bad_parameters():
    with pytest.raises(ValueError, match='unknown or no classes'):
        SceneConfig(classes=('hexagon', ))
    with pytest.raises(ValueError, match='min_objects'):
        SceneConfig(min_objects=3, max_objects=2)


def test_cli(tmp_path, capsys):
    out = str(tmp_path / 'cli')
    argv = ['--out', out, '--seed', '1', '--num-unlabeled', '2',
            '--num-train', '2', '--num-val', '1', '--img-size', '64',
            '--classes', 'circle', 'star']
    from ccop_plugin.datagen.cli import main
    assert main(argv) == 0
    meta = json.load(open(osp.join(out, 'meta.json')))
    assert meta['classes'] == ['circle', 'star']
    assert main(argv[:-2] + ['cross']) == 1
    assert 'other parameters' in capsys.readouterr().err


def test_cli_texture_by_class_and_test_split(tmp_path):
    out = str(tmp_path / 'f1')
    from ccop_plugin.datagen.cli import main
    assert main(
        ['--out', out, '--num-unlabeled', '1', '--num-train', '2',
         '--num-val', '1', '--num-test', '2', '--img-size', '32',
         '--texture-by-class']) == 0
    meta = json.load(open(osp.join(out, 'meta.json')))
    assert meta['splits']['test']['num_images'] == 2
    assert json.dumps(meta).count('"texture_by_class": true') == 1


@pytest.mark.slow
def test_cli_subprocess(tmp_path):
    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/generate_dataset.py'),
         '--out', str(tmp_path / 'x'), '--num-unlabeled', '1',
         '--num-train', '1', '--num-val', '1', '--img-size', '32'],
        capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert 'train: 1 images' in r.stdout


def _user_folder(root):
    """A folder of the user's own COCO data (not made by the generator)."""
    os.makedirs(osp.join(root, 'annotations'))
    os.makedirs(osp.join(root, 'images', 'train'))
    with open(osp.join(root, 'annotations', 'instances_train.json'), 'w') as f:
        f.write('{"user": true}')
    for i in range(1, 9):
        with open(osp.join(root, 'images', 'train', f'{i:06d}.png'),
                  'wb') as f:
            f.write(b'user image %d' % i)
    return {p: open(osp.join(root, p), 'rb').read()
            for p in _all_files(root)}


def test_refuses_a_folder_it_did_not_create(tmp_path, capsys):
    root = str(tmp_path / 'user')
    before = _user_folder(root)
    with pytest.raises(FileExistsError, match='not created by the dataset'):
        generate_synthetic_coco(root, seed=0, **SMALL)
    with pytest.raises(FileExistsError):
        generate_synthetic_coco(root, seed=0, overwrite=True, **SMALL)
    # the CLI: one line naming the folder, exit 1, nothing touched
    from ccop_plugin.datagen.cli import main
    assert main(
        ['--out', root, '--num-unlabeled', '1', '--num-train', '1',
         '--num-val', '1', '--img-size', '32']) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and root in err
    assert {p: open(osp.join(root, p), 'rb').read()
            for p in _all_files(root)} == before


def test_never_replaces_or_deletes_user_files_in_its_folder(tmp_path):
    root = str(tmp_path / 'mine')
    generate_synthetic_coco(root, seed=0, **SMALL)
    assert osp.isfile(osp.join(root, '.ccop_datagen_manifest.json'))
    # the user adds files next to the generated ones
    user_img = osp.join(root, 'images', 'unlabeled', '000009.png')
    user_note = osp.join(root, 'annotations', 'notes.json')
    for p in (user_img, user_note):
        with open(p, 'w') as f:
            f.write('mine')
    # fewer images: stale generated images go, the user's files stay
    generate_synthetic_coco(root, seed=0, overwrite=True,
                            **dict(SMALL, num_unlabeled=2))
    assert sorted(os.listdir(osp.join(root, 'images/unlabeled'))) == [
        '000001.png', '000002.png', '000009.png']
    assert open(user_img).read() == 'mine' == open(user_note).read()
    # more images: a user file in the way is refused, not replaced
    with pytest.raises(FileExistsError, match='000009.png was not written'):
        generate_synthetic_coco(root, seed=0, overwrite=True,
                                **dict(SMALL, num_unlabeled=9))
    assert open(user_img).read() == 'mine'


def test_adopts_a_dataset_of_the_previous_version(tmp_path):
    """A dataset written before the manifest existed stays reusable."""
    root = str(tmp_path / 'old')
    generate_synthetic_coco(root, seed=0, **SMALL)
    os.remove(osp.join(root, '.ccop_datagen_manifest.json'))
    assert generate_synthetic_coco(root, seed=0, **SMALL)['skipped']
    generate_synthetic_coco(root, seed=0, overwrite=True,
                            **dict(SMALL, num_unlabeled=2))
    assert sorted(os.listdir(osp.join(root, 'images/unlabeled'))) == [
        '000001.png', '000002.png']


def test_files_get_the_umask_permissions(tmp_path):
    """Images and annotations are readable as the umask allows (the atomic
    writer once left mkstemp's 0600 on every file)."""
    old = os.umask(0o022)
    try:
        root = str(tmp_path / 'd')
        generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=1,
                                num_val=1, img_size=32)
    finally:
        os.umask(old)
    modes = {f: os.stat(osp.join(root, f)).st_mode & 0o777
             for f in _all_files(root)}
    assert set(modes.values()) == {0o644}, modes


def test_make_scene_is_render_scene_with_boxes():
    """The loose images of the proposal tests are the dataset's scenes."""
    img, boxes = make_scene(90, 200, seed=4)
    ref, instances = render_scene(np.random.default_rng(4),
                                  SceneConfig(height=90, width=200))
    assert np.array_equal(img, ref) and img.shape == (90, 200, 3)
    assert boxes.dtype == np.float32 and boxes.shape == (len(instances), 4)
    for (_, mask), (x1, y1, x2, y2) in zip(instances, boxes):
        ys, xs = np.nonzero(mask)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1,
                                    ys.max() + 1)
    assert np.array_equal(make_scene(90, 200, seed=4)[0], img)
    assert not np.array_equal(make_scene(90, 200, seed=5)[0], img)
    _, many = make_scene(64, 64, seed=0, min_objects=6, max_objects=6,
                         min_visible=0, min_area=1)
    assert len(many) == 6


def test_write_scenes(tmp_path):
    d = str(tmp_path / 'imgs')
    names = write_scenes(d, 3, 40, 50, seed=2, names=['sub/a.png'])
    assert names == ['sub/a.png', 'scene_00001.jpg', 'scene_00002.jpg']
    a = cv2.imread(osp.join(d, 'sub', 'a.png'))
    assert np.array_equal(a, make_scene(40, 50, seed=2 * 100003)[0])  # PNG
    assert cv2.imread(osp.join(d, 'scene_00002.jpg')).shape == (40, 50, 3)


@pytest.mark.parametrize('by_class', [True, False])
def test_texture_names_the_class_only_when_asked(tmp_path, by_class):
    """Format 2 shares texture families across classes: a descriptor of the
    mask interior's texture (no outline, no background) names the class at
    chance level; with ``texture_by_class`` (format 1) it names most."""
    from ccop_plugin.evaluation.linear_probe import linear_probe
    root = str(tmp_path / 'd')
    generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=90,
                            num_val=40, img_size=96,
                            texture_by_class=by_class)
    res = linear_probe(None, root, features='mask_texture')
    if by_class:
        assert res['acc'] > 0.6
    else:
        assert res['acc'] < res['chance'] + 0.12


@pytest.mark.slow
def test_cli_full_disk_is_one_line_and_keeps_the_dataset(tmp_path):
    """A write error (here: files may not grow past 1 KB, as on a full disk)
    ends the tool with one line naming the file, not an OSError traceback;
    the images and annotations written before are kept."""
    import resource
    import signal
    root = str(tmp_path / 'd')
    generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=1,
                            num_val=1, img_size=32)
    before = {p: open(osp.join(root, p), 'rb').read()
              for p in _all_files(root)}

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/generate_dataset.py'),
         '--out', root, '--seed', '1', '--num-unlabeled', '1',
         '--num-train', '1', '--num-val', '1', '--img-size', '128',
         '--overwrite'],
        capture_output=True, text=True, cwd=REPO, preexec_fn=small_files,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'), timeout=120)
    assert r.returncode == 1, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and 'Traceback' not in r.stderr, r.stderr
    assert root in err[0] and 'File too large' in err[0], err
    # images and annotations are the old ones (meta.json, the mark of a
    # finished dataset, is removed while a dataset is being replaced)
    after = {p: open(osp.join(root, p), 'rb').read()
             for p in _all_files(root)}
    kept = [p for p in before if p.startswith(('images', 'annotations'))]
    assert len(kept) == 6 and all(after[p] == before[p] for p in kept)
    assert not [p for p in after if p.endswith('.tmp')]


def test_a_folder_in_use_is_refused_and_the_lock_file_is_not_foreign(
        tmp_path, capsys):
    """One writer per dataset folder: a second generator is refused while
    the folder is held, and the lock's holder file is not someone else's
    file (the generator still writes into the folder it holds)."""
    from ccop_plugin.datagen.cli import main as datagen_main
    from ccop_plugin.utils.folder_lock import FolderInUseError, FolderLock
    root = str(tmp_path / 'd')
    with FolderLock(root, what='dataset folder'):
        with pytest.raises(FolderInUseError, match='in use by pid'):
            generate_synthetic_coco(root, seed=0, **SMALL)
    assert not os.listdir(root)
    # the tool says so in one line
    with FolderLock(root, what='dataset folder'):
        assert datagen_main(['--out', root]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: dataset folder') and 'in use by' in err
    meta = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not meta['skipped']
    assert '.lock-holder.json' not in os.listdir(root)


def test_other_parameters_are_named(tmp_path):
    root = str(tmp_path / 'd')
    generate_synthetic_coco(root, seed=0, **SMALL)
    with pytest.raises(FileExistsError, match=r'seed 0 -> 1'):
        generate_synthetic_coco(root, seed=1, **SMALL)


def test_meta_json_is_a_checked_record(tmp_path):
    """meta.json carries its writer; a damaged one is not a finished
    dataset, and is regenerated."""
    root = str(tmp_path / 'd')
    generate_synthetic_coco(root, seed=0, **SMALL)
    meta_path = osp.join(root, 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    assert meta['writer'] == 'ccop_plugin.datagen.generate_synthetic_coco'
    with open(meta_path, 'w') as f:
        f.write('{"params": ')
    assert not is_complete(root)
    again = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not again['skipped'] and is_complete(root)
