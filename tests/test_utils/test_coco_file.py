"""The one COCO reader: its checks, and every reader of the package giving
the same one-line error for the same bad file."""
import json

import pytest

from ccop_plugin.apis.label_space import file_classes
from ccop_plugin.apis.user_data import UserDataError, _load
from ccop_plugin.proposals.proposal_file import read_proposal_file
from ccop_plugin.utils.coco_file import (
    read_categories,
    read_coco,
    write_first_images,
)

GOOD = dict(images=[dict(id=1, file_name='a.jpg', width=8, height=8)],
            annotations=[], categories=[dict(id=1, name='cat')])

# (content, message, whether a problem of the categories alone)
BAD = [
    (b'\xff\xfe{}', 'not UTF-8 text', False),
    (b'{"images": [', 'not valid JSON', False),
    (b'[1, 2]', 'not a COCO file', False),
    (b'{"annotations": []}', 'not a COCO file', False),
    (b'{"images": [], "annotations": {}}', '"annotations" is not a list',
     False),
    (b'{"images": [], "categories": {}}', '"categories" is not a list', True),
    (json.dumps(dict(GOOD, categories=[dict(id='1', name='x')])).encode(),
     r'categories\[0\] needs an integer "id"', True),
    (json.dumps(dict(GOOD, categories=[dict(id=1, name='x'),
                                       dict(id=2, name='x')])).encode(),
     "category name 'x' is listed twice", True),
]


def test_a_good_file_reads_as_written(tmp_path):
    path = tmp_path / 'good.json'
    path.write_text(json.dumps(GOOD))
    assert read_coco(str(path)) == GOOD
    assert read_categories(str(path)) == GOOD['categories']
    no_cats = tmp_path / 'nocats.json'
    no_cats.write_text(json.dumps(dict(images=[])))
    assert read_coco(str(no_cats)) == dict(images=[])
    with pytest.raises(ValueError, match='nocats.json: no "categories"'):
        read_categories(str(no_cats))
    with pytest.raises(FileNotFoundError, match='gone.json: no such'):
        read_coco(str(tmp_path / 'gone.json'))


@pytest.mark.parametrize('content, message, of_categories', BAD)
def test_every_reader_names_the_file_and_the_problem(tmp_path, content,
                                                     message, of_categories):
    path = tmp_path / 'bad.json'
    path.write_bytes(content)
    readers = [read_coco, file_classes,
               lambda p: write_first_images(p, str(tmp_path / 'x.json'), 1)]
    if of_categories:  # a proposal file's categories are not read
        images = json.loads(content)['images']
        assert read_proposal_file(str(path)).names == [
            im['file_name'] for im in images]
    else:
        readers.append(read_proposal_file)
    for reader in readers:
        with pytest.raises(ValueError, match=f'bad.json: {message}') as e:
            reader(str(path))
        assert '\n' not in str(e.value)
    with pytest.raises(UserDataError, match=f'bad.json: {message}'):
        _load(str(path))
    assert not (tmp_path / 'x.json').exists()


def test_first_images_keep_their_annotations_and_categories(tmp_path):
    src = tmp_path / 'train.json'
    coco = dict(GOOD, images=[dict(id=i, file_name=f'{i}.jpg')
                              for i in (7, 3, 9)],
                annotations=[dict(id=k, image_id=i)
                             for k, i in enumerate((9, 7, 3, 7))])
    src.write_text(json.dumps(coco))
    dst = tmp_path / 'first2.json'
    assert write_first_images(str(src), str(dst), 2) == dict(
        num_images=2, num_annotations=3)
    out = json.loads(dst.read_text())
    assert [im['id'] for im in out['images']] == [7, 3]
    assert [a['image_id'] for a in out['annotations']] == [7, 3, 7]
    assert out['categories'] == GOOD['categories']
    with pytest.raises(ValueError, match='train.json: asked for the first 4'):
        write_first_images(str(src), str(tmp_path / 'y.json'), 4)
    assert not (tmp_path / 'y.json').exists()
