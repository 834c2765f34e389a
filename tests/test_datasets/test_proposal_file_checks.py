"""Proposal files fed to pre-training: structure errors, missing images and
the dropped-box / whole-image counts."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

import ccop_plugin  # noqa: F401
from ccop_plugin.datasets import image_files, proposal_dataset, proposal_stats
from ccop_plugin.proposals.proposal_file import read_proposal_file

NAMES = ['a.png', 'b.png', 'c.png']


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture
def logs(monkeypatch):
    """Messages the dataset logs, as ``(level, text)``."""
    out = []
    for module in (proposal_dataset, image_files, proposal_stats):
        monkeypatch.setattr(
            module, 'print_log',
            lambda msg, logger=None, level=20: out.append((level, msg)))
    return out


def _write(tmp_path, anns, names=NAMES, images=None, write_images=True):
    img_dir = tmp_path / 'images'
    img_dir.mkdir(exist_ok=True)
    if write_images:
        for n in names:
            cv2.imwrite(str(img_dir / n), np.full((60, 80, 3), 128, np.uint8))
    images = images or [dict(id=i + 1, file_name=n, width=80, height=60)
                        for i, n in enumerate(names)]
    path = tmp_path / 'proposals.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=[dict(id=1, name='p')])))
    return img_dir, path


def _ann(i, img, bbox):
    return dict(id=i, image_id=img, category_id=1, bbox=bbox)


def _build(path, img_dir, **kw):
    return DATASETS.build(dict(type='ProposalImageDataset',
                               ann_file=str(path),
                               data_prefix=dict(img_path=str(img_dir)),
                               pipeline=[], **kw))


def test_three_number_bbox_is_an_error_not_a_made_up_box(tmp_path):
    # Before: the 12 numbers were reshaped into 3 made-up 4-number boxes.
    anns = [_ann(i + 1, 1, [10, 10, 20]) for i in range(4)]
    img_dir, path = _write(tmp_path, anns)
    with pytest.raises(ValueError) as e:
        _build(path, img_dir)
    msg = str(e.value)
    assert 'proposals.json' in msg and 'annotation id 1 ' in msg
    assert '4 numbers' in msg and '3 more malformed' in msg
    assert '\n' not in msg


@pytest.mark.parametrize('bad', [
    '10,10,20,20',  # a string
    {'x': 1, 'y': 2, 'w': 3, 'h': 4},  # a dict
    [[10, 10], [20, 20]],  # nested
    [10, 10, '20', 20],  # a numeric string: not silently converted
    [10, 10, None, 20],  # null: not silently NaN
    [True, 10, 20, 20],  # a boolean
    [10, 10, 20, 20, 5],  # five numbers
])
def test_malformed_bbox_names_file_and_annotation(tmp_path, bad):
    anns = [_ann(1, 1, [5, 5, 30, 20]), _ann(7, 2, bad),
            _ann(8, 3, [1, 1, 10, 10])]
    img_dir, path = _write(tmp_path, anns)
    with pytest.raises(ValueError, match=r'proposals\.json: annotation id 7 '
                       r'\(annotations\[1\]\) "bbox" must be a list of 4'):
        _build(path, img_dir)
    # the same check when the file comes as proposal_file (one reader)
    with pytest.raises(ValueError, match='annotation id 7'):
        _build(path, img_dir, proposal_file=str(path))
    with pytest.raises(ValueError, match='annotation id 7'):
        read_proposal_file(str(path))


@pytest.mark.parametrize('ann, problem', [
    (dict(id=7, image_id=2, category_id=1), 'has no "bbox"'),
    (_ann(7, 99, [1, 1, 5, 5]), '"image_id" 99 is not an id'),
    (_ann(7, [2], [1, 1, 5, 5]), '"image_id" \\[2\\] is not an id'),
])
def test_annotation_without_bbox_or_image(tmp_path, ann, problem):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20]), ann])
    with pytest.raises(ValueError, match='annotation id 7 .*' + problem):
        _build(path, img_dir)


def test_annotation_that_is_no_dict(tmp_path):
    img_dir, path = _write(tmp_path, [[1, 1, 5, 5]])
    with pytest.raises(ValueError, match=r'annotations\[0\] is a list'):
        _build(path, img_dir)


def test_duplicate_image_ids_and_names(tmp_path):
    # Before: boxes of the first image went to the second one silently.
    images = [dict(id=1, file_name='a.png'), dict(id=1, file_name='b.png')]
    img_dir, path = _write(tmp_path, [], images=images)
    with pytest.raises(ValueError, match='proposals.json: duplicate image id'):
        _build(path, img_dir)
    images = [dict(id=1, file_name='a.png'), dict(id=2, file_name='a.png')]
    img_dir, path = _write(tmp_path, [], images=images)
    with pytest.raises(ValueError, match="duplicate file_name 'a.png'"):
        _build(path, img_dir)


def test_valid_file_reads_in_file_order(tmp_path):
    anns = [_ann(1, 2, [1, 2, 3, 4]), _ann(2, 1, [5, 5, 30, 20.5]),
            _ann(3, 2, [float('nan'), 0, 5, 5]), _ann(4, 2, [9, 9, 9, 9])]
    _, path = _write(tmp_path, anns, write_images=False)
    idx = read_proposal_file(str(path))
    assert idx.names == NAMES
    np.testing.assert_allclose(idx.boxes['a.png'], [[5, 5, 30, 20.5]])
    np.testing.assert_allclose(idx.boxes['b.png'],
                               [[1, 2, 3, 4], [np.nan, 0, 5, 5], [9, 9, 9, 9]])
    assert idx.boxes['c.png'].shape == (0, 4)
    assert idx.num_boxes.tolist() == [1, 3, 0]
    assert idx.num_valid.tolist() == [1, 2, 0]


def test_missing_images_error_lists_them(tmp_path):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    (img_dir / 'b.png').unlink()
    (img_dir / 'c.png').unlink()
    with pytest.raises(FileNotFoundError) as e:
        _build(path, img_dir)
    msg = str(e.value)
    assert "2 of 3 images listed in" in msg and 'proposals.json' in msg
    assert "'b.png', 'c.png'" in msg and 'missing_images="skip"' in msg


def test_missing_images_skip_counts_and_logs(tmp_path, logs):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    (img_dir / 'c.png').unlink()
    ds = _build(path, img_dir, missing_images='skip')
    assert len(ds) == 2
    assert [d['img_path'][-5:] for d in ds.load_data_list()] == [
        'a.png', 'b.png']
    assert ds.proposal_stats['skipped_missing'] == 1
    assert any(lvl == 30 and "skipped 1 of 3 images" in m and "'c.png'" in m
               for lvl, m in logs)
    with pytest.raises(ValueError, match='missing_images must be one of'):
        _build(path, img_dir, missing_images='ignore')


def test_counts_logged_and_warning_when_most_boxes_dropped(tmp_path, logs):
    # Before: an all-invalid file silently made every box a whole image.
    anns = [_ann(1, 1, [5, 5, 0, 20]),  # empty
            _ann(2, 1, [500, 5, 10, 10]),  # outside the 80 x 60 image
            _ann(3, 2, [float('inf'), 5, 10, 10]),  # non-finite
            _ann(4, 2, [5, 5, 30, 20])]  # fine
    img_dir, path = _write(tmp_path, anns)
    ds = _build(path, img_dir)
    s = ds.proposal_stats
    assert (s['images'], s['boxes'], s['invalid'], s['fallback'],
            s['no_box'], s['not_listed']) == (3, 4, 3, 2, 1, 0)
    info = [m for lvl, m in logs if lvl == 20]
    assert len(info) == 1 and '3 invalid (75.0%)' in info[0]
    assert '2 images (66.7%) use the whole image' in info[0]
    warn = [m for lvl, m in logs if lvl == 30]
    assert len(warn) == 1 and '3 of 4 proposals' in warn[0]
    assert 'proposals.json' in warn[0]


def test_build_counts_equal_what_load_proposals_does(tmp_path):
    """The counts logged at build are exactly the run-time drops."""
    rng = np.random.default_rng(0)
    anns = [_ann(i + 1, int(rng.integers(1, 4)),
                 rng.uniform(-40, 100, 4).round(1).tolist())
            for i in range(60)]
    img_dir, path = _write(tmp_path, anns)
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadProposals', max_num=1000, log_interval=0)]
    ds = DATASETS.build(dict(type='ProposalImageDataset', ann_file=str(path),
                             data_prefix=dict(img_path=str(img_dir)),
                             pipeline=pipeline))
    out = [ds[i] for i in range(len(ds))]
    s = ds.proposal_stats
    assert 0 < s['invalid'] < s['boxes'] == 60
    assert sum(r['num_dropped_proposals'] for r in out) == s['invalid']
    assert sum(r['proposal_fallback'] for r in out) == s['fallback']


def test_no_training_image_in_the_proposal_file(tmp_path):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='train2017/a.png')],
        annotations=[_ann(1, 1, [5, 5, 30, 20])])))
    with pytest.raises(ValueError, match="other.json: none of the 3 "
                       "training images is listed"):
        _build(path, img_dir, proposal_file=str(other))


def test_load_proposals_rereads_a_rewritten_file(tmp_path):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    ds = DATASETS.build(dict(
        type='ProposalImageDataset', ann_file=str(path),
        data_prefix=dict(img_path=str(img_dir)),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadProposals', log_interval=0)]))
    r = ds[0]
    np.testing.assert_allclose(r['proposals'], [[5, 5, 35, 25]])
    _write(tmp_path, [_ann(1, 1, [1, 1, 10, 10]), _ann(2, 1, [2, 2, 4, 4])],
           write_images=False)
    ds.load_proposals(str(path))
    r = ds[0]
    assert r['num_proposals'] == 2
    np.testing.assert_allclose(r['proposals'], [[1, 1, 11, 11],
                                                [2, 2, 6, 6]])
    assert len(ds) == 3 and ds.proposal_stats['boxes'] == 2
    # a bad file: a clear error, the samples keep their proposals
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(images=[dict(id=1, file_name='x.png')])))
    with pytest.raises(ValueError, match='bad.json: none of the 3 training'):
        ds.load_proposals(str(bad))
    assert ds.proposal_file == str(path) and ds[0]['num_proposals'] == 2


def test_huge_integer_coordinate_is_an_invalid_box(tmp_path):
    """Before: ``OverflowError: int too large to convert to float`` without
    the file's name. A coordinate no float holds is a non-finite value:
    the box is dropped and counted like a NaN one."""
    huge = int('9' * 400)
    anns = [_ann(1, 1, [5, 5, 30, 20]), _ann(2, 1, [huge, 5, 30, 20]),
            _ann(3, 2, [1, 1, -huge, 10])]
    img_dir, path = _write(tmp_path, anns)
    idx = read_proposal_file(str(path))
    assert idx.num_boxes.tolist() == [2, 1, 0]
    assert idx.num_valid.tolist() == [1, 0, 0]
    assert np.isposinf(idx.boxes['a.png'][1, 0])
    assert np.isneginf(idx.boxes['b.png'][0, 2])
    ds = _build(path, img_dir)
    assert ds.proposal_stats['invalid'] == 2


def test_huge_image_size_names_the_file(tmp_path):
    images = [dict(id=1, file_name='a.png', width=int('9' * 400),
                   height=60)]
    img_dir, path = _write(tmp_path, [], names=['a.png'], images=images)
    with pytest.raises(ValueError, match=r'proposals\.json: images\[0\] '
                       r"\('a.png'\) has a \"width\" too large"):
        _build(path, img_dir)


@pytest.mark.parametrize('content, problem', [
    (b'{"images": [{"id": 1, "file_name": "\xff\xfe.png"}]}',
     'not UTF-8 text'),
    (b'{"images": [], "x": ' + b'9' * 5000 + b'}', 'not valid JSON'),
])
def test_undecodable_file_names_the_file(tmp_path, content, problem):
    """Before: ``UnicodeDecodeError`` / Python's integer-string limit
    (``ValueError``) without the file's name."""
    path = tmp_path / 'proposals.json'
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        read_proposal_file(str(path))
    msg = str(e.value)
    assert msg.startswith(f'{path}: {problem}') and '\n' not in msg


@pytest.mark.parametrize('name', [
    '/etc/hostname', '../a.png', 'sub/../../a.png', '..', 'C:\\a.png'])
def test_file_name_leaving_the_image_folder_is_refused(tmp_path, name):
    """Before: an absolute name passed the start-up check and failed at the
    first load with an assertion; ``..`` names were reported missing."""
    (tmp_path / 'a.png').write_bytes(b'')  # next to the image folder
    images = [dict(id=1, file_name='b.png'), dict(id=2, file_name=name)]
    img_dir, path = _write(tmp_path, [], names=['b.png'], images=images)
    with pytest.raises(ValueError) as e:
        _build(path, img_dir)
    msg = str(e.value)
    assert msg.startswith(f'{path}: images[1] file_name {name!r} ')
    assert 'relative to the image folder' in msg and '\n' not in msg


def test_inner_dot_dot_and_dot_names_stay_accepted(tmp_path):
    names = ['sub/x.png', './b.png', 'sub/../c.png']
    images = [dict(id=i + 1, file_name=n) for i, n in enumerate(names)]
    img_dir, path = _write(tmp_path, [], names=['b.png', 'c.png'],
                           images=images)
    (img_dir / 'sub').mkdir()
    cv2.imwrite(str(img_dir / 'sub' / 'x.png'), np.zeros((8, 8, 3), np.uint8))
    assert len(_build(path, img_dir)) == 3


def test_empty_image_is_found_at_start(tmp_path, mm_logs):
    """Before: a 0-byte image passed the start-up checks and crashed the
    first load with a cv2 assertion that did not name it."""
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    (img_dir / 'b.png').write_bytes(b'')
    with pytest.raises(ValueError) as e:
        _build(path, img_dir)
    msg = str(e.value)
    assert '1 of 3 images listed in' in msg and 'proposals.json' in msg
    assert "empty files (0 bytes)" in msg and "'b.png'" in msg
    assert 'missing_images="skip"' in msg and '\n' not in msg
    (img_dir / 'c.png').unlink()  # one missing too: FileNotFoundError
    with pytest.raises(FileNotFoundError, match="missing.*'c.png'.*empty"):
        _build(path, img_dir)
    ds = _build(path, img_dir, missing_images='skip')
    assert [osp.basename(d['img_path']) for d in ds.load_data_list()] == [
        'a.png']
    assert ds.proposal_stats['skipped_missing'] == 2
    assert any(lvl == 30 and "'b.png'" in m and "'c.png'" in m
               for lvl, m in mm_logs)


@pytest.mark.parametrize('content', [b'', b'not an image at all'])
def test_unreadable_image_in_training_is_skipped_and_named(
        tmp_path, mm_logs, content):
    """An image that breaks after the start (or that no header check
    catches) is skipped at load time, named and counted; another image
    stands in. Before: a cv2 traceback without the file's name."""
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    ds = DATASETS.build(dict(
        type='ProposalImageDataset', ann_file=str(path),
        data_prefix=dict(img_path=str(img_dir)),
        pipeline=[dict(type='LoadImageFromFile')]))
    bad = str(img_dir / 'b.png')
    with open(bad, 'wb') as f:
        f.write(content)
    for _ in range(3):
        sample = ds[1]
        assert sample['img_path'] != bad and sample['img'].shape == (60, 80, 3)
    problem = 'empty file (0 bytes)' if not content else \
        'not a decodable image'
    assert ds.unreadable_images == {bad: problem}
    warned = [m for lvl, m in mm_logs if lvl == 30 and 'skipped' in m]
    assert len(warned) == 1  # once per file
    assert f'skipped {bad}: {problem}' in warned[0]


def test_other_pipeline_errors_are_not_hidden(tmp_path):
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])])
    ds = DATASETS.build(dict(
        type='ProposalImageDataset', ann_file=str(path),
        data_prefix=dict(img_path=str(img_dir)),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='Resize', scale=(0, 0))]))
    with pytest.raises(Exception):
        ds[0]
    assert ds.unreadable_images == {}


def test_wrong_sizes_in_the_file_do_not_make_up_dropped_boxes(tmp_path,
                                                              mm_logs):
    """Before: with width/height 5 for 80 x 60 images, the start-up count
    said almost every box "will be dropped" while the pipeline (which
    judges boxes against the loaded image) kept them. Now the counts are
    what the pipeline does, and a warning says the sizes disagree."""
    rng = np.random.default_rng(1)
    anns = [_ann(i + 1, int(rng.integers(1, 4)),
                 np.r_[rng.uniform(-5, 70, 2), rng.uniform(-5, 30, 2)]
                 .round(1).tolist())
            for i in range(60)]
    images = [dict(id=i + 1, file_name=n, width=5, height=5)
              for i, n in enumerate(NAMES)]
    img_dir, path = _write(tmp_path, anns, images=images)
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadProposals', max_num=1000, log_interval=0)]
    ds = DATASETS.build(dict(type='ProposalImageDataset', ann_file=str(path),
                             data_prefix=dict(img_path=str(img_dir)),
                             pipeline=pipeline))
    out = [ds[i] for i in range(len(ds))]
    s = ds.proposal_stats
    assert sum(r['num_dropped_proposals'] for r in out) == s['invalid']
    assert sum(r['proposal_fallback'] for r in out) == s['fallback']
    assert 0 < s['invalid'] < s['boxes'] // 2  # not "most will be dropped"
    warned = [m for lvl, m in mm_logs if lvl == 30]
    assert len(warned) == 1, warned  # no "most proposals will be dropped"
    assert str(path) in warned[0] and "'a.png'" in warned[0]
    assert '5 x 5 in the file, 80 x 60' in warned[0]
    assert s['size_mismatch'] == 3


def test_sizes_of_a_rotated_photo_agree(tmp_path, mm_logs):
    """cv2 turns an EXIF-rotated photo upright: a file written from the
    loaded image gives width and height swapped against the stored pixels;
    that is no disagreement."""
    images = [dict(id=i + 1, file_name=n, width=60, height=80)
              for i, n in enumerate(NAMES)]
    img_dir, path = _write(tmp_path, [_ann(1, 1, [5, 5, 30, 20])],
                           images=images)
    ds = _build(path, img_dir)
    assert ds.proposal_stats['size_mismatch'] == 0
    assert not [m for lvl, m in mm_logs if lvl == 30 and 'disagree' in m]
