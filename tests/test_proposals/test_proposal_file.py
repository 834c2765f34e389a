"""The proposal file's writer and readers (ccop_plugin.proposals
.proposal_file) agree with each other."""
import json

import numpy as np
import pytest

from ccop_plugin.proposals.proposal_file import (
    read_image_proposals,
    read_proposal_file,
    write_proposal_file,
)
from ccop_plugin.proposals.sources import ImageEntry

ENTRIES = [ImageEntry(3, 'a.jpg'), ImageEntry(5, 'sub/b.jpg'),
           ImageEntry(9, 'c.jpg')]
RESULTS = {
    'a.jpg': dict(width=40, height=30,
                  boxes=np.array([[1, 2, 3, 4], [0.123, 5, 6.5, 7]])),
    'sub/b.jpg': dict(width=50, height=20, boxes=np.zeros((0, 4))),
    # c.jpg: no result, left out
}


def test_write_then_read_round_trip(tmp_path):
    out = str(tmp_path / 'p.json')
    counts = write_proposal_file(out, ENTRIES, RESULTS, info=dict(x=1))
    assert counts == dict(images=2, annotations=2)
    data = json.loads(open(out).read())
    assert data['info'] == dict(x=1)
    assert [a['id'] for a in data['annotations']] == [1, 2]
    assert data['annotations'][1]['bbox'] == [0.12, 5, 6.5, 7]  # 1/100 px
    idx = read_proposal_file(out)
    assert idx.names == ['a.jpg', 'sub/b.jpg'] and idx.ids == [3, 5]
    np.testing.assert_allclose(idx.sizes, [[30, 40], [20, 50]])
    np.testing.assert_allclose(idx.boxes['a.jpg'],
                               [[1, 2, 3, 4], [0.12, 5, 6.5, 7]])
    assert idx.boxes['sub/b.jpg'].shape == (0, 4)
    assert idx.num_boxes.tolist() == [2, 0]
    assert not list(tmp_path.glob('*.tmp.*'))


def test_read_image_proposals_selects_one_image(tmp_path):
    out = str(tmp_path / 'p.json')
    write_proposal_file(out, ENTRIES, RESULTS)
    entry, boxes = read_image_proposals(out)  # the first image
    assert entry == dict(id=3, file_name='a.jpg', height=30, width=40)
    assert boxes.shape == (2, 4) and boxes.dtype == np.float64
    assert read_image_proposals(out, file_name='sub/b.jpg')[0]['id'] == 5
    assert read_image_proposals(out, image_id=5)[1].shape == (0, 4)
    # Before: a negative index found no image (images[-1:0] is empty)
    assert read_image_proposals(out, index=-1)[0]['file_name'] == 'sub/b.jpg'
    with pytest.raises(ValueError, match=r'p\.json: no image with index 2'):
        read_image_proposals(out, index=2)
    with pytest.raises(ValueError, match="no image with file_name 'c.jpg'"):
        read_image_proposals(out, file_name='c.jpg')


def test_read_image_proposals_checks_the_file(tmp_path):
    # Before: the visualiser's own reader failed in a NumPy reshape that
    # did not name the file
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.jpg')],
        annotations=[dict(id=4, image_id=1, bbox=[1, 2, 3])])))
    with pytest.raises(ValueError) as e:
        read_image_proposals(str(bad))
    msg = str(e.value)
    assert 'bad.json: annotation id 4' in msg and '\n' not in msg
