"""Proposal recall (ccop_plugin.proposals.recall) and heat-map proposal files.

Hand-made boxes with known IoUs; fast, CPU, no downloads.
"""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from ccop_plugin.proposals.proposal_file import (
    read_proposal_file,
    write_proposal_file,
)
from ccop_plugin.proposals.recall import (
    evaluate_proposal_file,
    format_recall_markdown,
    format_recall_table,
    match_file_names,
    recall_table,
)
from ccop_plugin.proposals.sources import ImageEntry

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# GT A: [0, 0, 10, 10]; B: [20, 20, 30, 30] (xyxy)
GT = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)]
HIT_A_06 = [0, 0, 10, 6]    # IoU 0.6 with A
HIT_B_08 = [20, 20, 30, 28]  # IoU 0.8 with B
MISS = [50, 50, 60, 60]


def test_known_values():
    r = recall_table(GT, [np.array([HIT_A_06, HIT_B_08], np.float32)],
                     [2], [0.5, 0.7])
    np.testing.assert_allclose(r, [[1.0, 0.5]])


def test_same_as_mmdet_eval_recalls_where_it_works():
    from mmdet.evaluation.functional import eval_recalls
    props = [np.array([MISS, HIT_A_06, HIT_B_08], np.float32)]
    ours = recall_table(GT, props, [1, 2, 3], [0.5, 0.6, 0.7, 0.8])
    ref = eval_recalls(GT, props, [1, 2, 3], [0.5, 0.6, 0.7, 0.8],
                       logger='silent')
    np.testing.assert_allclose(ours, ref)


def test_ragged_images_work():
    # mmdet's eval_recalls fails here under NumPy 2 (np.array of ragged)
    gts = GT + [np.array([[0, 0, 5, 5]], np.float32)]
    props = [np.array([HIT_A_06], np.float32),
             np.array([[0, 0, 5, 5], MISS, MISS], np.float32)]
    r = recall_table(gts, props, [1, 3], [0.5])
    np.testing.assert_allclose(r[:, 0], [2 / 3, 2 / 3])


def test_order_matters_for_k():
    props = [np.array([MISS, HIT_A_06, MISS, HIT_B_08], np.float32)]
    r = recall_table(GT, props, [1, 2, 3, 4], [0.5])
    np.testing.assert_allclose(r[:, 0], [0, 0.5, 0.5, 1.0])


def test_image_without_proposals_is_zero_recall():
    gts = GT + [np.array([[0, 0, 5, 5]], np.float32)]
    props = [np.array([HIT_A_06, HIT_B_08], np.float32),
             np.zeros((0, 4), np.float32)]
    r = recall_table(gts, props, [10], [0.5])
    np.testing.assert_allclose(r, [[2 / 3]])


def test_no_ground_truth_is_an_error():
    with pytest.raises(ValueError, match='no ground-truth boxes'):
        recall_table([np.zeros((0, 4))], [np.array([MISS], np.float32)])


def test_match_file_names():
    m = match_file_names(['a/1.png', '2.png', 'x/3.png', '4.png', '5.png'],
                         ['1.png', 'val/2.png', 'x/3.png', 'p/4.png',
                          'q/4.png'])
    assert m == {'a/1.png': '1.png', '2.png': 'val/2.png',
                 'x/3.png': 'x/3.png', '4.png': None, '5.png': None}


# ----------------------------------------------------------- files

def write_gt(path, names, boxes_per_image, crowd=()):
    """COCO GT: ``boxes_per_image`` lists of xyxy boxes; ``crowd`` adds
    iscrowd boxes as (image index, xyxy)."""
    images = [dict(id=i + 1, file_name=n, width=64, height=64)
              for i, n in enumerate(names)]
    anns = []
    for i, bs in enumerate(boxes_per_image):
        for b in bs:
            anns.append((i, b, 0))
    for i, b in crowd:
        anns.append((i, b, 1))
    annotations = [dict(id=k + 1, image_id=i + 1, category_id=1,
                        bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]],
                        area=(b[2] - b[0]) * (b[3] - b[1]), iscrowd=c)
                   for k, (i, b, c) in enumerate(anns)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='thing')]), f)
    return str(path)


def write_props(path, named_boxes):
    """Proposal file through the store's writer; xyxy boxes per name."""
    entries = [ImageEntry(i + 1, n) for i, n in enumerate(named_boxes)]
    results = {}
    for n, bs in named_boxes.items():
        b = np.asarray(bs, np.float64).reshape(-1, 4)
        b[:, 2:] -= b[:, :2]
        results[n] = dict(width=64, height=64, boxes=b)
    write_proposal_file(str(path), entries, results)
    return str(path)


@pytest.fixture
def files(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', ['a.png', 'b.png', 'c.png'],
                  [[[0, 0, 10, 10], [20, 20, 30, 30]], [[0, 0, 5, 5]],
                   [[40, 40, 50, 50]]],
                  crowd=[(0, [30, 30, 60, 60])])
    # b.png listed without proposals, c.png not listed at all
    props = write_props(tmp_path / 'props.json', {
        'a.png': [MISS, HIT_A_06, HIT_B_08], 'b.png': []})
    return gt, props


def test_evaluate_files(files):
    gt, props = files
    r = evaluate_proposal_file(gt, props, [1, 3], [0.5, 0.7])
    assert r['images'] == 3 and r['gt_boxes'] == 4
    assert r['gt_ignored'] == 1  # the crowd box does not count
    assert r['matched_images'] == 2 and r['missing_images'] == 1
    assert r['images_without_proposals'] == 2
    assert r['recall'][1] == {0.5: 0.0, 0.7: 0.0}
    assert r['recall'][3] == {0.5: 0.5, 0.7: 0.25}
    assert r['images_with_at_least'] == {1: 1, 3: 1}
    assert r['proposals_per_image'] == 1.0
    # AR over 0.5:0.95: IoU 0.6 counts at 0.5..0.6, IoU 0.8 at 0.5..0.8
    assert r['ar'][3] == pytest.approx((3 + 7) / 10 / 4, abs=1e-4)
    table = format_recall_table([('ss', r)])
    assert 'R@3/0.7' in table and '0.250' in table
    md = format_recall_markdown([('ss ccop --max-size 320', r)])
    assert md.splitlines()[2].startswith('| ss ccop --max-size 320 | ')


def test_invalid_boxes_dropped_and_counted(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', ['a.png'], [[[0, 0, 10, 10]]])
    props = write_props(tmp_path / 'p.json',
                        {'a.png': [[5, 5, 5, 9], [0, 0, 10, 10]]})
    r = evaluate_proposal_file(gt, props, [1], [0.5])
    # the empty box is dropped, so the hit is the first proposal
    assert r['dropped_invalid'] == 1
    assert r['recall'][1][0.5] == 1.0


def test_repeated_boxes_counted_once_in_distinct(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', ['a.png'], [[[0, 0, 10, 10]]])
    props = write_props(tmp_path / 'p.json',
                        {'a.png': [MISS, MISS, MISS, HIT_A_06]})
    r = evaluate_proposal_file(gt, props, [4], [0.5])
    assert r['proposals_per_image'] == 4
    assert r['distinct_proposals_per_image'] == 2


def test_proposals_of_other_images_is_one_line_error(tmp_path):
    gt = write_gt(tmp_path / 'gt.json', ['a.png'], [[[0, 0, 10, 10]]])
    props = write_props(tmp_path / 'p.json', {'zzz.png': [MISS]})
    with pytest.raises(ValueError) as e:
        evaluate_proposal_file(gt, props)
    msg = str(e.value)
    assert '\n' not in msg and props in msg and 'names none' in msg


def run_tool(*args):
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'proposal_recall.py'),
         *map(str, args)], capture_output=True, text=True,
        env={'PYTHONPATH': ROOT, 'PATH': '/usr/bin:/bin'}, timeout=300)


@pytest.mark.slow
def test_tool(files, tmp_path):
    gt, props = files
    other = write_props(tmp_path / 'other.json', {'zzz.png': [MISS]})
    out = tmp_path / 'r.json'
    out.write_text('keep me')
    # refuses an existing output; a foreign proposal file: one-line error
    p = run_tool(gt, props, '--out-json', out)
    assert p.returncode == 1 and 'exists' in p.stderr
    assert out.read_text() == 'keep me'
    p = run_tool(gt, other)
    assert p.returncode == 1
    assert p.stderr.strip().count('\n') == 0 and 'names none' in p.stderr
    p = run_tool(gt, props, props, '--labels', 'x', 'y', '--out-json', out,
                 '--out-md', tmp_path / 'r.md', '--overwrite')
    assert p.returncode == 0, p.stderr
    assert 'R@100/0.7' in p.stdout and '1 ground-truth images missing' \
        in p.stdout
    rows = json.loads(out.read_text())
    assert [r['label'] for r in rows] == ['x', 'y']
    assert rows[0]['recall']['100']['0.5'] == 0.5


# ----------------------------------------------------------- heat maps

def test_heatmap_proposal_file(tmp_path):
    import cv2
    import torch

    from ccop_plugin.models.utils.heatmap_proposals import (
        HeatmapProposalGenerator,
    )
    from ccop_plugin.proposals.heatmap_file import (
        build_heatmap_backbone,
        write_heatmap_proposals,
    )
    rng = np.random.default_rng(0)
    for n in ('a.png', 'b.png'):
        cv2.imwrite(str(tmp_path / n),
                    rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    entries = [ImageEntry(1, 'a.png'), ImageEntry(2, 'b.png')]
    net, desc = build_heatmap_backbone(None, depth=18, seed=0)
    assert 'random' in desc
    gen = HeatmapProposalGenerator(num_boxes=5, min_size=2)
    out = str(tmp_path / 'hm.json')
    counts = write_heatmap_proposals(entries, str(tmp_path), out, net, gen,
                                     img_scale=64)
    assert counts['images'] == 2 and 2 <= counts['annotations'] <= 10
    index = read_proposal_file(out)
    assert index.names == ['a.png', 'b.png']
    assert (index.num_valid == index.num_boxes).all()
    b = index.boxes['a.png']
    assert (b[:, 0] + b[:, 2] <= 64 + 1e-3).all()
    assert (b[:, 1] + b[:, 3] <= 48 + 1e-3).all()
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_heatmap_proposals(entries, str(tmp_path), out, net, gen, 64)
    # a checkpoint's backbone is loaded (the converters' reader)
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in net.state_dict().items()}}, ckpt)
    net2, desc2 = build_heatmap_backbone(ckpt, seed=1)
    assert 'ResNet-18' in desc2
    for (k, v), v2 in zip(net.state_dict().items(),
                          net2.state_dict().values()):
        assert torch.equal(v, v2), k
    torch.save({'state_dict': {'head.w': torch.zeros(2)}}, ckpt)
    with pytest.raises(ValueError) as e:
        build_heatmap_backbone(ckpt)
    assert ckpt in str(e.value) and '\n' not in str(e.value)


def test_bad_ground_truth_is_one_line_error(tmp_path, files):
    from ccop_plugin.proposals.recall import load_ground_truth
    _, props = files
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png')],
        annotations=[dict(id=7, image_id=1, category_id=1, iscrowd=0)],
        categories=[])))
    with pytest.raises(ValueError, match='annotation id 7 has no "bbox"'):
        load_ground_truth(str(bad))
    images_only = tmp_path / 'images_only.json'
    images_only.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.png')])))
    with pytest.raises(ValueError, match='no "annotations"'):
        evaluate_proposal_file(str(images_only), props)
    with pytest.raises(ValueError, match='not found'):
        load_ground_truth(str(tmp_path / 'nothing.json'))


@pytest.mark.slow
def test_heatmap_tool_then_recall(tmp_path):
    import cv2
    rng = np.random.default_rng(1)
    img_dir = tmp_path / 'img'
    img_dir.mkdir()
    for n in ('a.png', 'b.png'):
        cv2.imwrite(str(img_dir / n),
                    rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    gt = write_gt(tmp_path / 'gt.json', ['a.png', 'b.png'],
                  [[[0, 0, 10, 10]], [[0, 0, 64, 64]]])
    out = tmp_path / 'hm.json'
    env = {'PYTHONPATH': ROOT, 'PATH': '/usr/bin:/bin'}
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'heatmap_proposals.py'),
           str(img_dir), '--ann-file', gt, '--out', str(out),
           '--img-scale', '64', '--num-boxes', '3', '--min-size', '2']
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert 'random initialisation' in p.stdout
    before = out.read_bytes()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 1 and '--overwrite' in p.stderr
    assert out.read_bytes() == before
    r = evaluate_proposal_file(gt, str(out), [3], [0.5])
    assert r['matched_images'] == 2 and r['missing_images'] == 0
