"""The main job on a user's own images and COCO labels: checked input,
normalised splits, images of any kind, the boxes-only detector, and an end
to end run on the repository's real photographs."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from ccop_plugin.apis.job_config import MainJobConfig
from ccop_plugin.apis.user_data import (
    UserDataError,
    choose_scale,
    prepare_user_data,
    user_detector_config,
)

PHOTOS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data',
                  'real_photos')
# a category subset with ids of the user's own, listed out of id order
IDS = dict(person=101, cat=7, cup=55, spoon=3, clock=90)


def _subset(src, dst, cats, masks=True):
    """``src`` (80 COCO categories) rewritten with ``cats`` only."""
    with open(src) as f:
        data = json.load(f)
    old = {c['id']: c['name'] for c in data['categories']}
    for a in data['annotations']:
        a['category_id'] = IDS[old[a['category_id']]]
        if not masks:
            a.pop('segmentation')
    data['categories'] = [dict(id=IDS[n], name=n) for n in cats]
    with open(dst, 'w') as f:
        json.dump(data, f)
    return dst


def user_dataset(tmp_path, masks=True, **kw) -> MainJobConfig:
    ann = osp.join(PHOTOS, 'annotations')
    train = _subset(osp.join(ann, 'instances_train2017.json'),
                    str(tmp_path / 'train.json'),
                    ['cup', 'person', 'clock', 'cat', 'spoon'], masks)
    # val lists only its own categories, in another order
    val = _subset(osp.join(ann, 'instances_val2017.json'),
                  str(tmp_path / 'val.json'), ['clock', 'person'], masks)
    return MainJobConfig(
        work_dir=str(tmp_path / 'job'),
        unlabeled=(osp.join(PHOTOS, 'train2017'),
                   osp.join(PHOTOS, 'val2017')),
        train_ann=train, train_images=osp.join(PHOTOS, 'train2017'),
        val_ann=val, val_images=osp.join(PHOTOS, 'val2017'), **kw)


def test_splits_share_the_train_label_space(tmp_path):
    cfg = user_dataset(tmp_path, img_scale=128)
    data = prepare_user_data(cfg, cfg.data_root)
    assert data['classes'] == ['spoon', 'cat', 'cup', 'clock', 'person']
    assert data['masks'] and data['splits'] == dict(unlabeled=6, train=4,
                                                    val=2)
    for split in ('train', 'val'):
        with open(osp.join(cfg.data_root, 'annotations',
                           f'instances_{split}.json')) as f:
            d = json.load(f)
        assert [c['name'] for c in d['categories']] == data['classes']
        for im in d['images']:
            assert osp.isfile(osp.join(cfg.data_root, 'images', split,
                                       im['file_name']))
    # pre-training images: copies at most 128 px, no annotations
    with open(osp.join(cfg.data_root, 'annotations', 'unlabeled.json')) as f:
        unl = json.load(f)
    assert unl['annotations'] == [] and len(unl['images']) == 6
    assert max(unl['images'][0]['width'], unl['images'][0]['height']) == 128


def test_image_scale_from_the_data(tmp_path):
    cfg = user_dataset(tmp_path)
    assert choose_scale(cfg.train_ann, 'cpu') == 320  # the photos' side
    big = tmp_path / 'big.json'
    big.write_text(json.dumps(dict(images=[dict(
        id=1, file_name='a.jpg', width=4000, height=3000)], categories=[])))
    assert choose_scale(str(big), 'cpu') == 512
    assert choose_scale(str(big), 'cuda') == 1024


def test_grayscale_rgba_16bit_and_exif_images(tmp_path):
    folder = tmp_path / 'unl'
    folder.mkdir()
    Image.new('L', (40, 20), 128).save(folder / 'gray.png')
    Image.new('RGBA', (40, 20), (1, 2, 3, 0)).save(folder / 'rgba.png')
    Image.fromarray(np.full((20, 40), 60000, np.uint16)).save(
        folder / 'deep.png')
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    Image.new('RGB', (40, 20)).save(folder / 'rot.jpg', exif=exif)
    (folder / 'broken.jpg').write_bytes(b'not an image')
    cfg = user_dataset(tmp_path, img_scale=128)
    cfg.unlabeled = (str(folder), )
    prepare_user_data(cfg, cfg.data_root)
    with open(osp.join(cfg.data_root, 'annotations', 'unlabeled.json')) as f:
        images = json.load(f)['images']
    sizes = {osp.basename(im['source']): (im['width'], im['height'])
             for im in images}
    assert sizes == {'deep.png': (40, 20), 'gray.png': (40, 20),
                     'rgba.png': (40, 20), 'rot.jpg': (20, 40)}
    for im in images:
        with Image.open(osp.join(cfg.data_root, 'images', 'unlabeled',
                                 im['file_name'])) as pil:
            assert pil.mode == 'RGB'


@pytest.mark.parametrize('break_it, message', [
    (lambda d: d['annotations'][0].update(category_id=999),
     'train.json: annotations\\[0\\] has category_id 999'),
    (lambda d: d['images'][0].update(file_name='gone.jpg'),
     "train.json: image 'gone.jpg' not found"),
    (lambda d: d['images'][0].update(width=10),
     "train.json: image 'astronaut.jpg' is 10x320 in the file"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, break_it, message):
    cfg = user_dataset(tmp_path, img_scale=64)
    with open(cfg.train_ann) as f:
        data = json.load(f)
    break_it(data)
    with open(cfg.train_ann, 'w') as f:
        json.dump(data, f)
    with pytest.raises(UserDataError, match=message) as e:
        prepare_user_data(cfg, cfg.data_root)
    assert '\n' not in str(e.value)


def test_boxes_only_annotations_fine_tune_faster_rcnn(tmp_path):
    from ccop_plugin.apis.finetune import finetune_detector
    from ccop_plugin.apis.methods import FINETUNE_CONFIG
    from ccop_plugin.testing import light_checkpoints, narrow_resnet18
    from ccop_plugin.utils.config_path import get_config_path
    cfg = user_dataset(tmp_path, masks=False, img_scale=96,
                       launcher='pytorch')
    data = prepare_user_data(cfg, cfg.data_root)
    assert not data['masks']
    det = user_detector_config(cfg, data, get_config_path(FINETUNE_CONFIG))
    assert det.model.type == 'FasterRCNN' and det.launcher == 'pytorch'
    assert det.model.roi_head.bbox_head.num_classes == 5
    det.launcher = 'none'  # one process here
    narrow_resnet18(det.model)  # 5 MB checkpoints instead of 104 MB
    light_checkpoints(det)
    metrics = finetune_detector(det, str(tmp_path / 'ft'),
                                data_root=cfg.data_root, max_iters=1)
    assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' not in metrics
    assert 'per_class/person_precision' in metrics


def test_the_launcher_reaches_the_pretraining_runner(monkeypatch, tmp_path):
    from mmengine.runner import Runner

    from ccop_plugin.apis import pretrain as pretrain_mod
    from ccop_plugin.utils.config_path import get_config_path
    seen = {}

    class Stop(Exception):
        pass

    def from_cfg(cfg):
        seen['launcher'] = cfg.launcher
        raise Stop

    monkeypatch.setattr(Runner, 'from_cfg', from_cfg)
    with pytest.raises(Stop):
        pretrain_mod.pretrain(
            get_config_path('ccop/ccop_resnet18-fpn_cpu-tiny.py'),
            str(tmp_path), launcher='pytorch')
    assert seen == dict(launcher='pytorch')


def test_cli_needs_every_split_option(capsys):
    from ccop_plugin.apis.main_job_cli import parse_args
    with pytest.raises(SystemExit):
        parse_args(['--train-ann', 'a.json'])
    assert '--unlabeled' in capsys.readouterr().err
    cfg = parse_args(['--unlabeled', 'u', '--train-ann', 't.json',
                      '--train-images', 'i', '--val-ann', 'v.json',
                      '--val-images', 'i', '--methods', 'ccop', 'mocov2',
                      'none', '--device', 'cpu'])
    assert cfg.user_data and cfg.job_methods == ('ccop', 'mocov2', 'none')
    assert cfg.pretrain_batch == MainJobConfig().pretrain_batch
    with pytest.raises(SystemExit):
        parse_args(['--methods', 'simclr'])


@pytest.mark.e2e
def test_main_job_on_real_photos_ccop_vs_none(tmp_path):
    from ccop_plugin.apis.main_job_cli import main
    cfg = user_dataset(tmp_path)
    argv = ['--work-dir', cfg.work_dir, '--unlabeled', *cfg.unlabeled,
            '--train-ann', cfg.train_ann, '--train-images', cfg.train_images,
            '--val-ann', cfg.val_ann, '--val-images', cfg.val_images,
            '--methods', 'ccop', 'none', '--img-scale', '128',
            '--pretrain-iters', '2', '--pretrain-batch', '2',
            '--finetune-epochs', '1', '--workers', '1', '--device', 'cpu',
            '--base-channels', '16']  # the tests' narrow ResNet-18
    assert main(argv) == 0
    report = open(osp.join(cfg.work_dir, 'report.md')).read()
    assert 'Mask R-CNN fine-tuning (COCO AP on your val split)' in report
    assert '| CCOP |' in report and '| no pre-training' in report
    assert '| person |' in report and '| clock |' in report
    assert 'spoon, cat, cup, clock, person' in report
    for fig in ('proposals', 'pretrain_losses', 'detections'):
        assert osp.isfile(osp.join(cfg.work_dir, 'figures', f'{fig}.png'))
    # a rerun reuses every stage
    assert main(argv) == 0
    with open(osp.join(cfg.work_dir, 'finetune_ccop', 'stage.json')) as f:
        settings = json.load(f)['settings']
    assert settings['img_scale'] == 128 and settings['base_channels'] == 16
    assert os.listdir(cfg.work_dir).count('superseded') == 0


@pytest.mark.parametrize('all_ranks', [False, True])
def test_other_ranks_read_the_record_of_rank_0(tmp_path, monkeypatch,
                                               all_ranks):
    """Under torchrun only rank 0 keeps the books; the training stages run
    on every rank, the others on rank 0 alone."""
    import mmengine.dist as dist

    from ccop_plugin.apis.stage import Stage
    stage = Stage(str(tmp_path), 'pretrain_ccop', dict(iters=2))
    barriers = []

    def barrier():  # rank 0 writes its record between the two barriers
        barriers.append(1)
        if len(barriers) == 2:
            stage_0 = Stage(str(tmp_path), 'pretrain_ccop', dict(iters=2))
            os.makedirs(stage_0.dir, exist_ok=True)
            with open(stage_0.marker, 'w') as f:
                json.dump(dict(key=stage_0.key, checkpoint='c.pth'), f)

    monkeypatch.setattr(dist, 'get_rank', lambda: 1)
    monkeypatch.setattr(dist, 'barrier', barrier)
    calls = []
    out = stage.run(lambda: calls.append(1) or dict(checkpoint='mine'),
                    all_ranks=all_ranks)
    assert out['checkpoint'] == 'c.pth' and out['run'] == 'computed by rank 0'
    assert calls == ([1] if all_ranks else [])
    assert len(barriers) == 2
    assert not osp.exists(stage.started)  # rank 0's alone


def test_fewer_unlabeled_images_than_a_batch(tmp_path):
    from ccop_plugin.apis.user_data import resolve_user_config
    cfg = resolve_user_config(user_dataset(tmp_path, device='cpu'))
    assert cfg.pretrain_batch == 6 and cfg.img_scale == 320
