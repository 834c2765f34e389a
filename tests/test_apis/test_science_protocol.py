"""The science protocol: its sweep record, the loss-over-chance fields of
the science record and the packaged cpu-science configs."""
import json
import math
import os
import os.path as osp
from dataclasses import replace

import pytest

from ccop_plugin.apis import (
    comparison,
    protocol_sweep,
    science_record,
    sweep_points,
)
from ccop_plugin.evaluation.linear_probe import VERSION
from ccop_plugin.utils import get_config_path

SCIENCE_CONFIGS = {
    'mocov2': 'mocov2/mocov2_resnet18-w16_cpu-science.py',
    'ccop': 'ccop/ccop_resnet18-w16-fpn_cpu-science.py',
    'ccop_no_curriculum':
    'ablations/ccop_resnet18-w16-fpn_no-curriculum_cpu-science.py',
    'ccop_no_intra': 'ablations/ccop_resnet18-w16-fpn_no-intra_cpu-science.py',
    'ccop_no_inter': 'ablations/ccop_resnet18-w16-fpn_no-inter_cpu-science.py',
    'ccop_intra_key':
    'ablations/ccop_resnet18-w16-fpn_intra-key_cpu-science.py',
}


def _model(name):
    from mmengine.config import Config
    return Config.fromfile(get_config_path(SCIENCE_CONFIGS[name])).model


def _write_scalars(run_dir, rows):
    d = osp.join(run_dir, '20260101_000000', 'vis_data')
    os.makedirs(d)
    with open(osp.join(d, 'scalars.json'), 'w') as f:
        for r in rows:
            f.write(json.dumps(r) + '\n')


def _finished_run(run_dir, options, loss=2.):
    """What a 10-iteration sweep run leaves: its scalars (``loss`` every
    iteration), its dumped config (``options``) and final checkpoint."""
    from mmengine.config import Config
    _write_scalars(run_dir, [dict(iter=i, loss=loss) for i in range(1, 11)])
    c = Config()
    c.merge_from_dict(options)
    c.dump(osp.join(run_dir, 'cfg.py'))
    open(osp.join(run_dir, 'iter_10.pth'), 'w').close()


def _patch_sweep(monkeypatch, fake_pretrain):
    """The sweep without data generation, pre-training by ``fake_pretrain``."""
    import ccop_plugin.apis.pretrain as pretrain_mod
    import ccop_plugin.datagen as datagen
    monkeypatch.setattr(datagen, 'generate_synthetic_coco',
                        lambda *a, **k: None)
    monkeypatch.setattr(pretrain_mod, 'pretrain', fake_pretrain)


def test_science_configs_share_everything_but_the_algorithm():
    moco, ccop = _model('mocov2'), _model('ccop')
    for key in ('queue_len', 'momentum'):
        assert moco[key] == ccop[key]
    # the same ResNet-18 (CCOP also taps the stages its FPN reads)
    assert moco.backbone == {k: v for k, v in ccop.backbone.items()
                             if k != 'out_indices'}
    assert moco.backbone.base_channels == 16
    assert moco.neck.in_channels == ccop.img_neck.in_channels == 128
    assert moco.head.temperature == ccop.head.temperature
    from mmengine.config import Config
    cfgs = {m: Config.fromfile(get_config_path(p))
            for m, p in SCIENCE_CONFIGS.items()}
    ref = cfgs['mocov2']
    for m, cfg in cfgs.items():
        assert cfg.optim_wrapper.optimizer == ref.optim_wrapper.optimizer
        for key in ('param_scheduler', 'train_cfg', 'randomness'):
            assert cfg[key] == ref[key], (m, key)
        for key in ('batch_size', 'num_workers'):
            assert cfg.train_dataloader[key] == ref.train_dataloader[key]
    # the same views; CCOP's RoI sizes follow the view size
    crop = ref.train_pipeline[1].transforms[0][0]
    for m, cfg in cfgs.items():
        if m == 'mocov2':
            continue
        views = cfg.train_dataloader.dataset.pipeline[2]
        assert (views.size, tuple(views.scale)) == (
            crop.scale, tuple(crop.crop_ratio_range)), m
        assert cfg.model.roi_neck.assign_sizes[-1] == views.size, m
        assert views.area_thr == round(144 * (views.size / 224)**2), m
    # the ablations leave out exactly one part
    assert cfgs['ccop_no_intra'].model.intra_head is None
    assert cfgs['ccop_no_inter'].model.roi_head is None
    assert cfgs['ccop_intra_key'].model.intra_head.anchor == 'key'
    cur = cfgs['ccop_no_curriculum'].model.curriculum
    assert cur.iou_thr[0] == cur.iou_thr[1]


def test_chance_levels_follow_the_config():
    ccop = science_record.chance_levels(_model('ccop'))
    assert ccop['loss_img'] == pytest.approx(math.log(257))
    assert ccop['loss_roi'] == pytest.approx(math.log(257))
    assert ccop['loss_intra'] == pytest.approx(0.4)  # the triplet margin
    # a head left out has no chance level
    assert 'loss_roi' not in science_record.chance_levels(
        _model('ccop_no_inter'))
    assert 'loss_intra' not in science_record.chance_levels(
        _model('ccop_no_intra'))
    assert science_record.chance_levels(dict(queue_len=64))['loss'] == (
        pytest.approx(math.log(65)))


def test_over_chance_uses_the_image_loss_not_the_total():
    model = dict(queue_len=256, roi_queue_len=256, roi_head=dict(),
                 intra_head=dict(margin=0.4))
    got = science_record.over_chance(
        dict(loss=9.0, loss_img=2.0 * math.log(257) / 4, loss_roi=math.log(
            257), loss_intra=0.2), model)
    assert got == pytest.approx(dict(infonce_over_chance=0.5,
                                     roi_infonce_over_chance=1.0,
                                     intra_over_chance=0.5))
    # MoCo logs one loss, its InfoNCE
    assert science_record.over_chance(
        dict(loss=math.log(257) * 0.75), dict(queue_len=256)) == (
        pytest.approx(dict(infonce_over_chance=0.75)))


def test_collect_results_adds_over_chance_per_seed(tmp_path):
    runs = {}
    for s, loss in ((0, 2.0), (1, 4.0)):
        run_dir = str(tmp_path / f'pre{s}')
        _write_scalars(run_dir, [dict(iter=i, loss=9., loss_img=loss,
                                      loss_roi=3.0, loss_intra=0.3)
                                 for i in (10, 20)])
        runs.setdefault('ccop', {})[s] = dict(
            pretrain=dict(checkpoint=osp.join(run_dir, 'iter_20.pth'),
                          config=SCIENCE_CONFIGS['ccop']),
            finetune=dict(metrics={'coco/bbox_mAP': 0.1,
                                   'coco/segm_mAP': 0.05}))
        runs.setdefault('none', {})[s] = dict(finetune=dict(
            metrics={'coco/bbox_mAP': 0.05, 'coco/segm_mAP': 0.02}))
    vals = comparison.collect_results(runs, ['ccop', 'none'], [0, 1])
    ln = math.log(257)
    assert vals['ccop']['infonce_over_chance'] == pytest.approx(
        [2.0 / ln, 4.0 / ln])
    assert vals['ccop']['roi_infonce_over_chance'] == pytest.approx(
        [3.0 / ln] * 2)
    assert vals['ccop']['intra_over_chance'] == pytest.approx([0.75] * 2)
    assert set(vals['none']) == set(science_record.RECORD_KEYS)


def test_record_with_data_seeds_supervised_and_over_chance(tmp_path):
    path = str(tmp_path / 'science.json')
    proto = dict(seeds=[0, 1], data_seeds=[0, 1])
    res = dict(mocov2=dict(probe_acc=[.5] * 4, bbox_ap=[.1] * 4,
                           segm_ap=[None] * 4,
                           infonce_over_chance=[.6, .7, .65, None]),
               none=dict(probe_acc=[.4] * 4, bbox_ap=[.1] * 4,
                         segm_ap=[.1] * 4))
    obj = science_record.write_science_record(path, proto, res,
                                              supervised=[.9] * 4)
    assert science_record.read_science_record(path) == obj
    assert obj['results']['supervised'] == dict(probe_acc=[.9] * 4)
    assert obj['protocol']['methods'] == ['mocov2', 'none']
    # one value per data seed and run seed
    with pytest.raises(ValueError, match=r'one value per seed \(4\)'):
        science_record.write_science_record(
            path, proto, dict(none=dict(probe_acc=[.4] * 2,
                                        bbox_ap=[.1] * 2,
                                        segm_ap=[.1] * 2)))
    bad = dict(obj)
    bad['results'] = dict(obj['results'],
                          none=dict(res['none'], extra=[1] * 4))
    with pytest.raises(ValueError, match='must have the keys'):
        science_record._check_record(bad, path)
    bad['results'] = dict(obj['results'],
                          supervised=dict(probe_acc=[.9] * 4,
                                          bbox_ap=[.1] * 4))
    with pytest.raises(ValueError, match='results.supervised'):
        science_record._check_record(bad, path)


def test_sweep_levers_resolve_to_a_moco_config(tmp_path):
    from mmengine.config import Config
    lv = protocol_sweep.Levers(width=16, crop=64, colour='light', blur=False,
                               queue=64, iters=40, workers=1)
    cfg = Config.fromfile(get_config_path(protocol_sweep.SWEEP_CONFIG))
    cfg.merge_from_dict(protocol_sweep.lever_options(lv, '/x/'))
    assert cfg.model.backbone.base_channels == 16
    assert cfg.model.neck.in_channels == 128
    assert cfg.model.queue_len == 64
    assert cfg.train_cfg.max_iters == 40
    view = cfg.train_dataloader.dataset.pipeline[1]['transforms'][0]
    types = [t['type'] for t in view]
    assert 'GaussianBlur' not in types and types[0] == 'RandomResizedCrop'
    assert view[0]['scale'] == 64
    with pytest.raises(ValueError, match='colour'):
        protocol_sweep.view_pipeline(protocol_sweep.Levers(colour='neon'))


def test_sweep_summary_and_record(tmp_path):
    run_dir = str(tmp_path / 'run')
    ln = math.log(257)
    _write_scalars(run_dir, [dict(iter=i * 10, loss=ln - i * 0.1)
                             for i in range(1, 21)])
    s = protocol_sweep.summarise_run(run_dir, 256)
    assert s['chance'] == pytest.approx(ln, abs=1e-4)
    assert s['final_loss'] == pytest.approx(ln - 1.95, abs=1e-4)
    assert s['learns'] == (s['final_loss'] <= 0.75 * ln)
    assert s['loss_curve'][0] == [10, round(ln - 0.1, 4)]
    from dataclasses import asdict
    point = dict(name='p', levers=asdict(protocol_sweep.Levers(width=16)),
                 sec_per_iter=0.5, **s)
    rec = str(tmp_path / 'sweep.json')
    protocol_sweep.write_protocol_sweep(rec, dict(command='x'), [point])
    assert protocol_sweep.read_protocol_sweep(rec)['points'][0]['name'] == 'p'
    table = protocol_sweep.protocol_sweep_table([point])
    assert '| p | width=16 |' in table
    other = str(tmp_path / 'other.json')
    with open(other, 'w') as f:
        f.write('{"mine": 1}')
    with pytest.raises(FileExistsError, match='not a protocol sweep record'):
        protocol_sweep.write_protocol_sweep(other, {}, [point])
    assert open(other).read() == '{"mine": 1}'


def test_committed_sweep_record_is_the_tools_points():
    """Every point of the committed record is a named point of the tool
    with the same levers, so `make science-protocol` reproduces it."""
    from dataclasses import asdict
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    rec = protocol_sweep.read_protocol_sweep(
        osp.join(repo, 'docs/benchmarks/science_protocol_sweep.json'))
    for p in rec['points']:
        assert p['name'] in sweep_points.SWEEP_POINTS, p['name']
        assert asdict(protocol_sweep.Levers(**p['levers'])) == asdict(
            sweep_points.SWEEP_POINTS[p['name']]), p['name']
        assert p['learns'] == (p['over_chance'] <= 0.75)
    assert any(p['learns'] for p in rec['points'])


def test_sweep_keeps_recorded_points_unless_rerun(tmp_path, monkeypatch):
    """A recorded point with the same levers is kept (no run); with
    ``rerun`` it runs again (e.g. to get its checkpoint back) and its entry
    is replaced in place. An interrupted sweep keeps every recorded point
    it has not replaced (a rerun of seeds 2-4, 0, 1 stopped after seed 2
    used to drop seeds 0 and 1 from the record). A finished run dir of the
    same levers is summarised, not rerun."""
    runs = []

    def fake_pretrain(cfg, run_dir, options):
        if options['randomness.seed'] == 9:
            raise KeyboardInterrupt
        runs.append(options['randomness.seed'])
        _finished_run(run_dir, options, loss=5. - len(runs))

    _patch_sweep(monkeypatch, fake_pretrain)
    rec = str(tmp_path / 'sweep.json')
    lv = protocol_sweep.Levers(width=16, iters=10, seed=3)
    pts = dict(p=lv, q=protocol_sweep.Levers(width=16, iters=10, seed=4))
    first = protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [3, 4] and first[0]['final_loss'] == 4.
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [3, 4]  # kept, not rerun
    new = dict(n=protocol_sweep.Levers(width=16, iters=10, seed=9), **pts)
    with pytest.raises(KeyboardInterrupt):
        protocol_sweep.run_protocol_sweep(new, str(tmp_path), rec,
                                          rerun=True)
    with pytest.raises(KeyboardInterrupt):  # n first, then p, q
        protocol_sweep.run_protocol_sweep(
            dict(p=pts['p'], n=new['n'], q=pts['q']), str(tmp_path), rec,
            rerun=True)
    assert runs == [3, 4, 3]
    points = protocol_sweep.read_protocol_sweep(rec)['points']
    assert [(p['name'], p['final_loss']) for p in points] == [
        ('p', 2.), ('q', 3.)]  # p replaced in place, q still there
    # the record is lost, the finished runs are not: summarised, no run
    os.remove(rec)
    again = protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [3, 4, 3]
    assert [p['final_loss'] for p in again] == [2., 3.]
    assert protocol_sweep.finished_run_seconds(
        str(tmp_path / 'p'), pts['q'], '/x/') is None  # other levers


def test_sweep_reruns_points_of_an_edited_config(tmp_path, monkeypatch):
    """The sweep's points are runs of one packaged config with levers: a
    point recorded (or a run dir finished) under other content of that
    config is run again (it used to be kept by its levers alone, so an
    edited config silently reused the old runs); runs of the content the
    points were first made with stay valid."""
    import ccop_plugin.apis.config_digest as digests
    runs = []

    def fake_pretrain(cfg, run_dir, options):
        runs.append(digests.config_digest(protocol_sweep.SWEEP_CONFIG))
        _finished_run(run_dir, options)

    _patch_sweep(monkeypatch, fake_pretrain)
    rec = str(tmp_path / 'sweep.json')
    pts = dict(p=protocol_sweep.Levers(width=16, iters=10))
    packaged = digests.config_digest(protocol_sweep.SWEEP_CONFIG)
    assert digests.NAME_KEYED_DIGESTS[protocol_sweep.SWEEP_CONFIG] == \
        packaged
    first = protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [packaged] and 'config_digest' not in first[0]
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [packaged]  # same content: kept
    monkeypatch.setattr(digests, 'config_digest', lambda name: 'edited')
    out = protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [packaged, 'edited']
    assert out[0]['config_digest'] == 'edited'
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert len(runs) == 2
    os.remove(rec)  # the finished run dir is of the edited content
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert len(runs) == 2
    monkeypatch.undo()  # back to the packaged content: run again
    _patch_sweep(monkeypatch, fake_pretrain)
    os.remove(rec)
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert runs == [packaged, 'edited', packaged]
    # a finished run of before this check (no digest file) stays valid
    os.remove(rec)
    os.remove(tmp_path / 'p' / protocol_sweep.DIGEST_FILE)
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec)
    assert len(runs) == 3


def test_sweep_probes_points_and_random_init_once(tmp_path, monkeypatch):
    """With ``probe_data`` every new point's checkpoint is probed, random
    init of the points' width is probed once per record, a recorded point
    is probed once (when its checkpoint is there), and the table says which
    points beat random init (mean + sd)."""
    import ccop_plugin.evaluation as evaluation
    probed = []

    def fake_probe(ckpt, data_root, seed=0, random_width=64, **kw):
        assert kw['val_split'] == kw['select_split'] == 'val'
        probed.append(osp.basename(osp.dirname(ckpt)) if ckpt
                      else f'random{seed}w{random_width}')
        acc = 0.30 + 0.01 * seed if ckpt is None else (
            0.40 if 'good' in ckpt else 0.305)
        return dict(acc=acc, train_acc=0.5, weight_decay=1.,
                    max_iter=10, seconds=0.1, version=VERSION)

    _patch_sweep(monkeypatch, lambda cfg, run_dir, options: _finished_run(
        run_dir, options))
    monkeypatch.setattr(evaluation, 'linear_probe', fake_probe)
    rec = str(tmp_path / 'sweep.json')
    data = str(tmp_path / 'data')
    lv = protocol_sweep.Levers(width=16, iters=10)
    # recorded before, without a probe: its checkpoint is gone
    protocol_sweep.run_protocol_sweep(dict(old=lv), str(tmp_path), rec)
    os.remove(tmp_path / 'old' / 'iter_10.pth')
    pts = dict(old=lv, good=replace(lv, seed=1), bad=replace(lv, seed=2))
    out = protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec,
                                            probe_data=data)
    assert probed == [f'random{s}w16' for s in range(5)] + ['good', 'bad']
    assert 'probe' not in out[0]
    assert out[1]['probe']['val_acc'] == 0.40
    got = protocol_sweep.read_protocol_sweep(rec)
    rnd = got['protocol']['random_init_probe']
    assert rnd['mean'] == pytest.approx(0.32) and rnd['width'] == 16
    table = open(str(tmp_path / 'sweep.md')).read()
    assert '40.0 (beats random)' in table and '30.5 |' in table
    # a second run probes nothing again
    protocol_sweep.run_protocol_sweep(pts, str(tmp_path), rec,
                                      probe_data=data)
    assert len(probed) == 7
    with pytest.raises(ValueError, match='one width'):
        protocol_sweep.run_protocol_sweep(
            dict(a=lv, w=replace(lv, width=32)), str(tmp_path), rec,
            probe_data=data)


def test_science_protocol_is_the_sweeps_passing_point():
    """The cpu-science MoCo v2 config trains exactly what the sweep point
    whose five seeds passed the probe's control trained (model, views,
    batch, workers, optimiser, schedule, seed)."""
    from mmengine.config import Config
    sweep = Config.fromfile(get_config_path(protocol_sweep.SWEEP_CONFIG))
    sweep.merge_from_dict(protocol_sweep.lever_options(
        sweep_points.SWEEP_POINTS[sweep_points.PROTOCOL_POINT], '/x/'))
    science = Config.fromfile(get_config_path(SCIENCE_CONFIGS['mocov2']))

    def plain(cfg, key):
        v = cfg[key]
        return json.loads(json.dumps(v.to_dict() if hasattr(v, 'to_dict')
                                     else v, default=str))

    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                'randomness'):
        assert plain(sweep, key) == plain(science, key), key
    a, b = sweep.train_dataloader, science.train_dataloader
    assert plain(a.dataset, 'pipeline') == plain(b.dataset, 'pipeline')
    assert (a.batch_size, a.num_workers) == (b.batch_size, b.num_workers)
