"""The dataset-scale tool: output format, determinism, resume, shards,
failures. Images are tiny generated scenes (160x120) so each run takes ~1 s."""
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from proposal_runs import quiet, read, run

from ccop_plugin.datagen import make_scene, write_scenes
from ccop_plugin.proposals import (
    ProposalStateError,
    RunOptions,
    get_preset,
    list_coco_images,
    list_image_dir,
    merge_work_dir,
    propose,
    resize_for_search,
    run_proposals,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 120, 160


@pytest.fixture(scope='module')
def img_dir(tmp_path_factory):
    """10 good scenes (two in a sub-folder, one PNG) and a corrupt file."""
    d = str(tmp_path_factory.mktemp('imgs'))
    names = [f'img_{i:02d}.jpg' for i in range(8)] + ['sub/a.jpg',
                                                      'sub/b.png']
    write_scenes(d, len(names), H, W, seed=3, names=names)
    with open(osp.join(d, 'corrupt.jpg'), 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 this is not really a jpeg' * 10)
    with open(osp.join(d, 'notes.txt'), 'w') as f:
        f.write('not an image, not listed')
    return d


def test_listing_is_sorted_and_recursive(img_dir):
    names = [e.file_name for e in list_image_dir(img_dir)]
    assert names == sorted(names) and len(names) == 11
    assert 'sub/b.png' in names and 'notes.txt' not in names
    assert [e.id for e in list_image_dir(img_dir)] == list(range(1, 12))


def test_propose_and_downscale_map_back():
    img, _ = make_scene(H, W, seed=5)
    small, sx, sy = resize_for_search(img, 80)
    assert small.shape[:2] == (60, 80) and sx == 2.0 and sy == 2.0
    assert resize_for_search(img, 500)[1:] == (1.0, 1.0)
    full = propose(img, get_preset('ccop'), 'x', return_candidates=True)
    half = propose(img, get_preset('ccop', max_size=80), 'x',
                   return_candidates=True)
    for r in (full, half):
        b = r['candidates']
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= W).all()
        assert (b[:, 1] >= 0).all() and (b[:, 3] <= H).all()
        assert 0 < len(r['boxes']) <= 50
    # the whole-image region found at half size maps back to the full image
    assert any(np.allclose(c, [0, 0, W, H]) for c in half['candidates'])
    # half-resolution boxes are multiples of the scale factor
    assert np.allclose(half['candidates'] % 2, 0)


def test_output_is_brief_format_and_loads_with_pycocotools(img_dir, tmp_path):
    from pycocotools.coco import COCO
    out, s = run(img_dir, str(tmp_path))
    assert s.failed == 1 and s.processed == 11
    assert s.failures[0][0] == 'corrupt.jpg'
    data = json.loads(read(out))
    assert set(data) >= {'images', 'annotations', 'categories'}
    assert data['categories'] == [
        {'id': 1, 'name': 'proposal', 'supercategory': 'proposal'}]
    names = [im['file_name'] for im in data['images']]
    assert 'corrupt.jpg' not in names and len(names) == 10
    for im in data['images']:
        assert set(im) == {'id', 'file_name', 'width', 'height'}
        assert (im['width'], im['height']) == (W, H)
    ids = [a['id'] for a in data['annotations']]
    assert ids == list(range(1, len(ids) + 1))
    for a in data['annotations']:
        assert set(a) == {'id', 'image_id', 'category_id', 'bbox', 'area',
                          'iscrowd'}
        x, y, w, h = a['bbox']
        assert a['category_id'] == 1 and a['iscrowd'] == 0
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= W and y + h <= H
        assert 1 / 3 < w / h < 3 and np.sqrt(w * h) > 20
        assert a['area'] == pytest.approx(w * h, abs=0.01)
    coco = COCO(out)
    assert len(coco.getImgIds()) == 10
    assert coco.getCatIds() == [1]
    per_img = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
    assert all(0 < n <= 50 for n in per_img)
    # the failure report names the corrupt image and the reason
    report = read(osp.join(tmp_path, 'out.failures.txt')).decode()
    assert report.startswith('corrupt.jpg\t') and 'decode' in report


@pytest.mark.slow
def test_parallel_equals_single_process_and_rerun_is_noop(img_dir,
                                                         tmp_path):
    out1, _ = run(img_dir, str(tmp_path), 'one', workers=1)
    out2, s2 = run(img_dir, str(tmp_path), 'two', workers=2)
    assert s2.workers == 2
    assert read(out1) == read(out2)
    # rerun: nothing to do, same bytes
    _, s3 = run(img_dir, str(tmp_path), 'two', workers=2)
    assert s3.processed == 0 and s3.already_done == 11
    assert read(out2) == read(out1)


def test_soco_preset_runs(img_dir, tmp_path):
    out, s = run(img_dir, str(tmp_path), cfg=get_preset('soco'))
    data = json.loads(read(out))
    by_img = {}
    for a in data['annotations']:
        by_img.setdefault(a['image_id'], []).append(a['bbox'])
    assert len(by_img) == 10  # every image gets >= 1 box (fallback)
    for boxes in by_img.values():
        for x, y, w, h in boxes:
            assert w >= 32 and h >= 32 or (w, h) == (W, H)


@pytest.mark.slow
def test_resume_after_partial_run_and_truncated_line(img_dir, tmp_path):
    ref, _ = run(img_dir, str(tmp_path), 'ref')
    # a "killed" run: some finished lines, then a half-written one
    entries = list_image_dir(img_dir)
    work = osp.join(tmp_path, 'res.work')
    run_proposals(entries[:4], img_dir, get_preset('ccop'),
                  osp.join(tmp_path, 'tmp4.work'),
                  RunOptions(workers=1, progress=False, log=quiet))
    os.makedirs(work)
    shutil.copy(osp.join(tmp_path, 'tmp4.work', 'shard-00000-of-00001.jsonl'),
                osp.join(work, 'shard-00000-of-00001.jsonl'))
    with open(osp.join(work, 'shard-00000-of-00001.jsonl'), 'ab') as f:
        f.write(b'{"k":4,"id":5,"file_name":"img_04.jpg","width":160,"hei')
    msgs = []
    out, s = run(img_dir, str(tmp_path), 'res', log=msgs.append)
    assert s.already_done == 4 and s.processed == 7
    assert any('truncated' in m for m in msgs)
    assert read(out) == read(ref)


@pytest.mark.slow
def test_killed_cli_run_resumes_to_identical_json(tmp_path):
    """SIGKILL a real CLI run mid-way; the rerun gives the same bytes."""
    d = str(tmp_path / 'imgs')
    write_scenes(d, 20, H, W, seed=11)
    out_ref, _ = run(d, str(tmp_path), 'ref')
    out = str(tmp_path / 'cli.json')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'selective_search.py'), d,
           '--out', out, '--workers', '1', '--no-progress']
    shard = out + '.work/shard-00000-of-00001.jsonl'
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    lines = 0
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if osp.exists(shard):
            with open(shard, 'rb') as f:
                lines = f.read().count(b'\n')
            if lines >= 5:
                break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert 5 <= lines < 20, f'run was not interrupted mid-way ({lines})'
    assert not osp.exists(out)  # no half-written final JSON
    # simulate a torn write on top of the kill
    with open(shard, 'ab') as f:
        f.write(b'{"k":19,"file_na')
    r = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'already done' in r.stdout and 'summary' in r.stdout
    assert read(out) == read(out_ref)


@pytest.mark.slow
def test_shards_merge_to_full_set(img_dir, tmp_path):
    ref, _ = run(img_dir, str(tmp_path), 'ref')
    entries = list_image_dir(img_dir)
    work = str(tmp_path / 'sh.work')
    out = str(tmp_path / 'sh.json')
    seen = []
    for i in (0, 2):
        s = run_proposals(entries, img_dir, get_preset('ccop'), work,
                          RunOptions(out=out, workers=1, shard=(i, 3),
                                     progress=False, log=quiet))
        seen.append(s.images_in_shard)
        assert s.merge is None
    assert not osp.exists(out)
    with pytest.raises(ProposalStateError, match='no result yet'):
        merge_work_dir(work, out, log=quiet)
    run_proposals(entries, img_dir, get_preset('ccop'), work,
                  RunOptions(workers=2, shard=(1, 3), progress=False,
                             log=quiet))
    m = merge_work_dir(work, out, log=quiet)
    assert m['images'] == 10 and m['failures'] == 1 and m['missing'] == 0
    assert read(out) == read(ref)
    # a shard file copied twice: the merge refuses duplicated images
    shutil.copy(osp.join(work, 'shard-00001-of-00003.jsonl'),
                osp.join(work, 'shard-00001-of-00004.jsonl'))
    with pytest.raises(ProposalStateError, match='more than one result'):
        merge_work_dir(work, out, log=quiet)
    # the merge CLI reports it as an error, not a traceback
    r = subprocess.run([sys.executable,
                        osp.join(REPO, 'tools', 'merge_proposals.py'),
                        '--out', out, '--work-dir', work],
                       capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode != 0 and 'more than one result' in r.stderr


@pytest.mark.slow
def test_work_dir_refuses_other_settings(img_dir, tmp_path):
    run(img_dir, str(tmp_path), 'w')
    with pytest.raises(ProposalStateError,
                       match=r'settings differ \(max_num 50 -> 10\)'):
        run(img_dir, str(tmp_path), 'w', cfg=get_preset('ccop', max_num=10))
    _, s = run(img_dir, str(tmp_path), 'w',
               cfg=get_preset('ccop', max_num=10), overwrite=True)
    assert s.processed == 11


def test_retry_failed_after_fixing_image(img_dir, tmp_path):
    d = str(tmp_path / 'imgs')
    shutil.copytree(img_dir, d)
    out, s = run(d, str(tmp_path))
    assert s.failed == 1
    _, s = run(d, str(tmp_path))  # failures are final unless retried
    assert s.processed == 0
    img, _ = make_scene(H, W, seed=99)
    cv2.imwrite(osp.join(d, 'corrupt.jpg'), img)
    _, s = run(d, str(tmp_path), retry_failed=True)
    assert s.processed == 1 and s.failed == 0
    data = json.loads(read(out))
    assert 'corrupt.jpg' in [im['file_name'] for im in data['images']]
    assert not osp.exists(str(tmp_path / 'out.failures.txt'))


def test_coco_annotation_file_as_image_list(img_dir, tmp_path):
    ann = {'images': [{'id': 907, 'file_name': 'sub/b.png', 'width': W,
                       'height': H},
                      {'id': 12, 'file_name': 'img_03.jpg', 'width': W,
                       'height': H}],
           'annotations': [{'id': 1, 'image_id': 12, 'bbox': [0, 0, 5, 5],
                            'category_id': 7}],
           'categories': [{'id': 7, 'name': 'cat'}]}
    ann_file = str(tmp_path / 'inst.json')
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    entries = list_coco_images(ann_file)
    out, s = run(img_dir, str(tmp_path), entries=entries)
    data = json.loads(read(out))
    assert [(im['id'], im['file_name']) for im in data['images']] == [
        (907, 'sub/b.png'), (12, 'img_03.jpg')]
    assert {a['image_id'] for a in data['annotations']} == {907, 12}
    assert data['categories'][0]['name'] == 'proposal'
    bad = dict(ann, images=ann['images'] + [ann['images'][0]])
    with open(ann_file, 'w') as f:
        json.dump(bad, f)
    with pytest.raises(ValueError, match='duplicate'):
        list_coco_images(ann_file)


def test_dead_worker_is_reported_not_fatal(img_dir, tmp_path):
    from proposal_crash_helper import crash_on_img05
    out, s = run(img_dir, str(tmp_path), workers=2, worker_fn=crash_on_img05)
    failed = dict(s.failures)
    assert set(failed) == {'corrupt.jpg', 'img_05.jpg'}
    assert 'worker process died' in failed['img_05.jpg']
    data = json.loads(read(out))
    assert len(data['images']) == 9


def test_workers_start_after_opencv_threads_ran_in_parent(tmp_path):
    """Regression: forked workers deadlocked in cv2.setNumThreads once the
    parent had run selective search at a size that starts OpenCV's pool."""
    d = str(tmp_path / 'imgs')
    write_scenes(d, 2, 480, 640, seed=5)
    img, _ = make_scene(480, 640, seed=1)
    cv2.setNumThreads(2)
    propose(img, get_preset('ccop', max_size=200), 'x')
    cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)

    def timeout(signum, frame):
        raise TimeoutError('workers hang after OpenCV ran in the parent')

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(120)
    try:
        _, s = run(d, str(tmp_path), workers=2,
                   cfg=get_preset('ccop', max_size=160))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert s.processed == 2 and s.failed == 0


def test_visualize_tool(img_dir, tmp_path, capsys):
    from ccop_plugin.proposals.cli import visualize_main
    out, _ = run(img_dir, str(tmp_path))
    png = str(tmp_path / 'vis.png')
    assert visualize_main([img_dir, '--proposals', out, '--file-name',
                           'sub/a.jpg', '--out', png]) == 0
    vis = cv2.imread(png)
    orig = cv2.imread(osp.join(img_dir, 'sub/a.jpg'))
    assert vis.shape == orig.shape and (vis != orig).any()
    png2 = str(tmp_path / 'vis2.png')
    assert visualize_main([osp.join(img_dir, 'img_00.jpg'), '--out', png2,
                           '--max-num', '5']) == 0
    assert cv2.imread(png2).shape == (H, W, 3)
    assert capsys.readouterr().out.splitlines()[-1] == (
        f'wrote {png2} (5 proposals on img_00.jpg)')
    # an unwritable PNG is one error line and exit 1
    assert visualize_main([osp.join(img_dir, 'img_00.jpg'), '--out',
                           str(tmp_path / 'no' / 'dir' / 'x.png')]) == 1
    assert capsys.readouterr().err.startswith('error: could not write ')


def test_round_trip_through_load_proposals(img_dir, tmp_path):
    """The training side (ProposalImageDataset + LoadProposals) reads the
    tool's JSON unchanged."""
    from mmcv.transforms import LoadImageFromFile

    from ccop_plugin.datasets import ProposalImageDataset
    from ccop_plugin.datasets.transforms import LoadProposals
    out, _ = run(img_dir, str(tmp_path))
    data = json.loads(read(out))
    ds = ProposalImageDataset(
        ann_file=out, data_prefix=dict(img_path=img_dir),
        pipeline=[LoadImageFromFile(), LoadProposals(max_num=100)])
    assert len(ds) == len(data['images'])
    for k, im in enumerate(data['images']):
        want = np.array([a['bbox'] for a in data['annotations']
                         if a['image_id'] == im['id']], np.float32)
        want[:, 2:] += want[:, :2]
        res = ds[k]
        assert res['img_path'] == osp.join(img_dir, im['file_name'])
        assert res['img_shape'] == (im['height'], im['width'])
        assert res['num_dropped_proposals'] == 0
        assert not res['proposal_fallback']
        np.testing.assert_allclose(res['proposals'], want, atol=1e-4)


@pytest.mark.parametrize('image, problem', [
    ({'id': 1, 'file_name': '/etc/hostname'}, 'leaves the image folder'),
    ({'id': 1, 'file_name': '../x.png'}, 'leaves the image folder'),
    ({'id': 'a', 'file_name': 'x.png'}, 'integer ids'),
])
def test_coco_image_list_is_checked_by_the_one_reader(tmp_path, image,
                                                      problem):
    ann_file = tmp_path / 'inst.json'
    ann_file.write_text(json.dumps({'images': [image]}))
    with pytest.raises(ValueError, match=f'inst.json: images.*{problem}'):
        list_coco_images(str(ann_file))
    ann_file.write_bytes(b'{"images": [{"id": 1, "file_name": "\xff"}]}')
    with pytest.raises(ValueError, match='inst.json: not UTF-8'):
        list_coco_images(str(ann_file))
