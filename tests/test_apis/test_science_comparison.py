"""The comparison under the science protocol (``--protocol cpu-science``):
its configs and budget, its detector (every backbone weight of a width-16
checkpoint transfers; a silent drop is an error), the loop over data seeds
and the record's fields -- stage functions stubbed, nothing trained."""
import json
import os
import os.path as osp

import pytest
import torch

from ccop_plugin.apis import pretrain, report, science_record, stages
from ccop_plugin.apis.comparison import run_comparison, run_keys
from ccop_plugin.apis.config_digest import config_digest
from ccop_plugin.apis.main_job import MainJobConfig
from ccop_plugin.apis.methods import (
    PROTOCOL_WIDTH,
    SCIENCE_FINETUNE_CONFIG,
    SCIENCE_PRETRAIN_CONFIGS,
    finetune_config,
    pretrain_config,
    protocol_methods,
)
from ccop_plugin.utils import get_config_path

SCIENCE = 'cpu-science'
STEPS = dict(data=stages.DataStep, proposals=stages.ProposalsStep,
             pretrain=stages.PretrainStep, convert=stages.ConvertStep,
             finetune=stages.FinetuneStep, test=stages.TestStep)


def _science_cfg(tmp_path, **kw):
    kw.setdefault('pretrain_iters', None)
    kw.setdefault('pretrain_batch', None)
    return MainJobConfig(work_dir=str(tmp_path / 'sci'), seed=0,
                         num_unlabeled=4, num_train=2, num_val=2, num_test=2,
                         protocol=SCIENCE, **kw)


# ------------------------------------------------------- protocol choice
def test_protocol_picks_the_science_configs_and_keeps_their_budget(
        tmp_path):
    from mmengine.config import Config
    cfg = _science_cfg(tmp_path)
    assert set(protocol_methods(SCIENCE)) == set(SCIENCE_PRETRAIN_CONFIGS) | {
        'none'}
    pre = stages.PretrainStep(cfg, 'ccop').settings()
    own = Config.fromfile(get_config_path(SCIENCE_PRETRAIN_CONFIGS['ccop']))
    # edited since its stages were keyed by name: its content is in the key
    assert pre.pop('config_digest') == config_digest(
        SCIENCE_PRETRAIN_CONFIGS['ccop'])
    assert pre == dict(method='ccop', config=SCIENCE_PRETRAIN_CONFIGS['ccop'],
                       iters=own.train_cfg.max_iters,
                       batch=own.train_dataloader.batch_size, seed=0)
    assert (pre['iters'], pre['batch']) == (400, 32)
    # nothing of the protocol's batch, schedule or warm-up is overridden
    opts = pretrain.pretrain_options(cfg, 'ccop')
    assert opts['randomness.seed'] == 0
    assert not [k for k in opts if k.startswith(
        ('param_scheduler', 'train_cfg', 'train_dataloader.batch_size',
         'default_hooks'))]
    assert opts['train_dataloader.dataset.ann_file'].endswith(
        'unlabeled_proposals.json')
    assert 'train_dataloader.dataset.ann_file' not in (
        pretrain.pretrain_options(cfg, 'mocov2'))
    # the detector, conversion target and probe width follow the protocol
    assert stages.FinetuneStep(cfg, 'ccop').settings()['config'] == (
        SCIENCE_FINETUNE_CONFIG)
    assert stages.ConvertStep(cfg, 'ccop').settings()['config'] == (
        SCIENCE_FINETUNE_CONFIG)
    assert stages.TestStep(cfg, 'ccop').settings()['config'] == (
        SCIENCE_FINETUNE_CONFIG)
    assert stages.detector_config(cfg).endswith(SCIENCE_FINETUNE_CONFIG)
    probe = stages.ProbeStep(cfg, 'none', lambda *a, **k: 0.5)
    assert probe.settings()['width'] == 16 == PROTOCOL_WIDTH[SCIENCE]
    # the tiny protocol's keys are those of before
    tiny = MainJobConfig(work_dir=str(tmp_path))
    assert 'config' not in stages.ConvertStep(tiny, 'ccop').settings()
    assert 'width' not in stages.ProbeStep(tiny, 'none',
                                           probe.probe).settings()
    assert pretrain_config('heatmap', SCIENCE) is None
    with pytest.raises(ValueError, match='unknown protocol'):
        finetune_config('gpu-huge')


def test_an_iteration_override_keeps_the_schedule_shape(tmp_path):
    cfg = _science_cfg(tmp_path, pretrain_iters=40, pretrain_batch=16)
    opts = pretrain.pretrain_options(cfg, 'mocov2')
    assert opts['train_cfg.max_iters'] == 40
    assert opts['train_dataloader.batch_size'] == 16
    warm, cos = opts['param_scheduler']
    # the protocol's 20 of 400 warm-up iterations: the same 5 %
    assert (warm['type'], warm['end']) == ('LinearLR', 2)
    assert (cos['begin'], cos['end'], cos['T_max']) == (2, 40, 38)
    assert stages.PretrainStep(cfg, 'mocov2').settings()['iters'] == 40


def test_cli_protocol_and_data_seeds(capsys):
    from ccop_plugin.apis import comparison_cli as cp
    a = cp.parse_options(['--protocol', SCIENCE, '--seeds', '5',
                          '--data-seeds', '2', '--methods', 'all',
                          '--supervised-control', '--supervised-steps', '9'])
    assert a.cfg.protocol == SCIENCE
    # None: the configs' own iterations and batch
    assert a.cfg.pretrain_iters is None and a.cfg.pretrain_batch is None
    assert a.seeds == [0, 1, 2, 3, 4] and a.data_seeds == [0, 1]
    assert a.methods == list(protocol_methods(SCIENCE)) and a.supervised
    assert a.supervised_steps == 9
    a = cp.parse_options(['--protocol', SCIENCE, '--pretrain-iters', '8'])
    assert a.cfg.pretrain_iters == 8 and a.data_seeds is None
    # the tiny protocol keeps its defaults
    a = cp.parse_options([])
    assert a.cfg.protocol == 'cpu-tiny' and a.cfg.pretrain_iters == 200
    assert a.cfg.pretrain_batch == 16 and not a.supervised
    with pytest.raises(SystemExit):
        cp.parse_options(['--protocol', SCIENCE, '--methods', 'ccop',
                          'plrc'])
    assert 'for the protocol cpu-science' in capsys.readouterr().err


# -------------------------------------------------------- data-seed loop
@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions recording (stage, method, data seed, run seed, work
    dir); pre-training logs a final image loss of 0.5 x chance."""
    calls = []

    def fake(name):
        def fn(self, out_dir):
            cfg = self.cfg
            method = getattr(self, 'method', None)
            calls.append((name, method, cfg.seed, cfg.train_seed,
                          cfg.work_dir))
            os.makedirs(out_dir, exist_ok=True)
            out = osp.join(out_dir, f'{name}.out')
            with open(out, 'w') as f:
                json.dump(dict(seed=cfg.train_seed), f)
            ap = 0.1 + 0.01 * cfg.train_seed + 0.1 * cfg.seed
            rec = dict(checkpoint=out, proposal_file=out, splits={},
                       metrics={'coco/bbox_mAP': ap,
                                'coco/segm_mAP': ap / 2})
            if name == 'pretrain':
                rec.update(config=pretrain_config(method, cfg.protocol),
                           iters=4, batch=32)
                vis = osp.join(out_dir, '20260101_000000', 'vis_data')
                os.makedirs(vis)
                loss = 0.5 * science_record.chance_levels(dict(
                    queue_len=256))['loss']
                with open(osp.join(vis, 'scalars.json'), 'w') as f:
                    for it in (1, 2, 3, 4):
                        f.write(json.dumps(dict(iter=it, loss=loss,
                                                loss_img=loss)) + '\n')
            return rec
        return fn

    for name, step in STEPS.items():
        monkeypatch.setattr(step, 'compute', fake(name))
    monkeypatch.setattr(report, 'draw_sample_proposals', lambda *a, **k: None)
    monkeypatch.setattr(report, 'draw_sample_detections',
                        lambda *a, **k: None)
    return calls


class FakeProbe(list):
    def __call__(self, checkpoint, data_root, seed=0, val_split='val',
                 random_width=64):
        self.append((checkpoint, data_root, seed, random_width))
        return dict(acc=0.3 + 0.01 * seed)


class FakeControl(list):
    def __call__(self, data_root, seed=0, val_split='val', width=64,
                 log=None, steps=1000):
        assert steps == 7  # --supervised-steps reaches the control
        self.append((data_root, seed, val_split, width))
        return dict(acc=0.8 + 0.01 * seed,
                    supervised=dict(train_acc=1.0))


def test_data_seed_loop_and_record_fields(tmp_path, fake_stages):
    cfg = _science_cfg(tmp_path)
    record = str(tmp_path / 'science.json')
    probe, control = FakeProbe(), FakeControl()
    methods = ['ccop', 'mocov2', 'none']
    res = run_comparison(cfg, methods, seeds=[0, 1], record=record,
                         probe=probe, data_seeds=[0, 1],
                         supervised=control, supervised_steps=7)
    # each data seed has its own data and proposals, in its own folder
    made = [(c[0], c[2], c[4]) for c in fake_stages
            if c[0] in ('data', 'proposals')]
    sub = osp.join(cfg.work_dir, 'data_seed1')
    assert made == [('data', 0, cfg.work_dir), ('proposals', 0, cfg.work_dir),
                    ('data', 1, sub), ('proposals', 1, sub)]
    # every (data seed, run seed) pre-trains each method once
    pre = sorted((c[1], c[2], c[3]) for c in fake_stages
                 if c[0] == 'pretrain')
    assert pre == sorted((m, d, s) for m in ('ccop', 'mocov2')
                         for d in (0, 1) for s in (0, 1))
    assert res['runs']['ccop'][(1, 0)]['pretrain']['stage'] == (
        'pretrain_ccop_seed0')
    assert res['runs']['ccop'][(1, 1)]['pretrain']['stage'] == (
        'pretrain_ccop')
    # the probe of random init is the protocol's width, on each data seed
    assert {(r, w) for c, r, _, w in probe if c is None} == {
        (osp.join(cfg.work_dir, 'data'), 16), (osp.join(sub, 'data'), 16)}
    assert sorted((r, s, w) for r, s, _, w in control) == sorted(
        (osp.join(d, 'data'), s, 16) for d in (cfg.work_dir, sub)
        for s in (0, 1))

    obj = science_record.read_science_record(record)
    p = obj['protocol']
    assert p['data_seeds'] == [0, 1] and p['seeds'] == [0, 1]
    assert p['protocol'] == SCIENCE
    assert p['finetune']['config'] == SCIENCE_FINETUNE_CONFIG
    assert p['pretrain']['configs']['ccop'] == SCIENCE_PRETRAIN_CONFIGS[
        'ccop']
    assert p['pretrain']['iters'] == 400 and p['pretrain']['batch'] == 32
    assert p['methods'] == methods
    assert 'supervised_probe_acc' in p['evaluation']
    r = obj['results']
    assert list(r) == methods + ['supervised']
    # one value per (data seed, run seed), data seed first
    assert run_keys([0, 1], [0, 1]) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert r['ccop']['bbox_ap'] == pytest.approx(
        [0.1 + 0.01 * s + 0.1 * d for d in (0, 1) for s in (0, 1)])
    assert r['supervised']['probe_acc'] == pytest.approx(
        [0.8, 0.81, 0.8, 0.81])
    for m in ('ccop', 'mocov2'):
        assert r[m]['infonce_over_chance'] == pytest.approx([0.5] * 4)
    assert 'infonce_over_chance' not in r['none']
    table = open(osp.join(cfg.work_dir, 'comparison.md')).read()
    assert 'Positive control of the probe' in table
    assert table.index('Positive controls, read before') < table.index(
        'Paired differences against')
    text = open(osp.join(cfg.work_dir, 'report.md')).read()
    assert 'Runs are (data seed, run seed)' in text

    # a rerun reuses every stage, one more run seed runs only its own
    fake_stages.clear()
    run_comparison(cfg, methods, seeds=[0, 1], record=record, probe=probe,
                   data_seeds=[0, 1], supervised=control, supervised_steps=7)
    assert not fake_stages
    run_comparison(cfg, methods, seeds=[0, 1, 2], record=record,
                   probe=probe, data_seeds=[0, 1], supervised=control,
                   supervised_steps=7)
    assert {c[3] for c in fake_stages} == {2}
    assert len(science_record.read_science_record(record)['results'][
        'supervised']['probe_acc']) == 6


def test_science_protocol_refuses_methods_without_a_config(tmp_path):
    with pytest.raises(ValueError, match='for the protocol cpu-science'):
        run_comparison(_science_cfg(tmp_path), ['ccop', 'mcl'], seeds=[0])
    with pytest.raises(ValueError, match='data seeds must be distinct'):
        run_comparison(_science_cfg(tmp_path), ['ccop'], seeds=[0],
                       data_seeds=[1, 1])


# ------------------------------------------- the detector of the protocol
@pytest.fixture(scope='module')
def science_checkpoint(tmp_path_factory):
    """A cpu-science CCOP checkpoint (initial weights: only its layout
    matters here)."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = Config.fromfile(get_config_path(
        SCIENCE_PRETRAIN_CONFIGS['ccop'])).model
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    path = str(tmp_path_factory.mktemp('sci') / 'iter_400.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=400)),
               path)
    return path


def test_science_checkpoint_transfers_every_backbone_and_fpn_weight(
        science_checkpoint):
    from ccop_plugin.converters import (
        convert_to_mmdet,
        expected_keys_from_config,
        require_full_backbone,
    )
    expected = expected_keys_from_config(
        get_config_path(SCIENCE_FINETUNE_CONFIG))
    res = convert_to_mmdet(science_checkpoint, expected=expected)
    require_full_backbone(res)
    assert not res.missing and not res.warnings
    mapped = {t for _, t in res.mapped}
    assert mapped == {k for k in expected
                      if k.startswith(('backbone.', 'neck.'))}
    assert res.state_dict['backbone.conv1.weight'].shape[0] == 16
    assert res.state_dict['neck.fpn_convs.0.conv.weight'].shape[0] == 64


def test_width64_detector_keeps_no_weight_and_the_stage_refuses(
        tmp_path, science_checkpoint):
    """The width-64 detector of the tiny protocol maps by shape and keeps
    nothing of a width-16 backbone: the convert stage must say so."""
    from ccop_plugin.converters import ConversionError
    tiny = MainJobConfig(work_dir=str(tmp_path))
    step = stages.ConvertStep(tiny, 'ccop', science_checkpoint)
    with pytest.raises(ConversionError, match='backbone does not transfer'):
        step.compute(str(tmp_path / 'convert'))
    assert not osp.exists(str(tmp_path / 'convert' / 'mmdet_init.pth'))
    # the protocol's own detector takes it whole
    sci = _science_cfg(tmp_path)
    rec = stages.ConvertStep(sci, 'ccop', science_checkpoint).compute(
        str(tmp_path / 'convert_sci'))
    assert rec['num_missing'] == 0 and osp.isfile(rec['checkpoint'])


def test_step_benchmark_builds_the_science_configs():
    """``tools/benchmark_pretrain.py --science`` times the protocol's own
    models (the profile of docs/science.md)."""
    import argparse

    from ccop_plugin.benchmarks import pretrain_report, pretrain_step
    from ccop_plugin.benchmarks.pretrain_timing import _model_cfg
    args = pretrain_step.parse_args(['--science', '--batch', '32', '--size',
                                     '64', '--boxes', '30'])
    for name in ('ccop', 'mocov2'):
        cfg = _model_cfg(name, args)
        assert cfg.backbone.base_channels == 16 == cfg.backbone.stem_channels
        assert cfg.backbone.init_cfg is None and cfg.queue_len == 256
    assert 'cpu-science' in pretrain_report.setting(args)
    plain = argparse.Namespace(depth=50, batch=32, size=224, boxes=16,
                               queue_len=65536, amp=False)
    assert pretrain_report.setting(plain) == (
        'ResNet-50, batch 32, 224 px, 16 boxes/image, queues 65536, fp32')
    with pytest.raises(SystemExit):
        pretrain_step.parse_args(['--science', '--record', 'x.json'])


@pytest.mark.parametrize('grid, seeds', [('fits-2h', None), ('full', None),
                                         ('fits-2h', 4)])
def test_make_science_arguments(grid, seeds):
    """`make science`'s command parses to the science protocol with the
    labelled split the probe's control needs, a 120-image fine-tuning
    subset, two data seeds and the grid's methods (make -n: nothing runs)."""
    import shlex
    import shutil
    import subprocess

    from ccop_plugin.apis import comparison_cli as cp
    if shutil.which('make') is None:
        pytest.skip('no make')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    extra = [] if seeds is None else [f'SCIENCE_SEEDS={seeds}']
    out = subprocess.run(['make', '-n', '-s', 'science',
                          f'SCIENCE_GRID={grid}'] + extra, cwd=repo,
                         check=True, capture_output=True, text=True).stdout
    line = [ln for ln in out.splitlines() if 'compare_pretraining' in ln]
    args = shlex.split(line[-1].split('compare_pretraining.py', 1)[1])
    a = cp.parse_options(args)
    assert a.cfg.protocol == SCIENCE and a.supervised
    assert (a.cfg.num_train, a.cfg.num_val, a.cfg.num_test) == (2000, 200,
                                                                300)
    assert a.cfg.finetune_images == 120 and a.data_seeds == [0, 1]
    if grid == 'full':
        assert set(a.methods) == set(protocol_methods(SCIENCE))
    else:
        assert a.methods == ['ccop', 'mocov2', 'none']
    assert a.seeds == list(range(seeds or (5 if grid == 'full' else 2)))


def _make_tool_args(target, *extra):
    """``make -n TARGET``'s arguments of each tool it runs
    (compare_pretraining.py, merge_science_records.py; the last line of
    each, continuation lines joined); skips without make."""
    import shlex
    import shutil
    import subprocess
    if shutil.which('make') is None:
        pytest.skip('no make')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    out = subprocess.run(['make', '-n', '-s', target, *extra], cwd=repo,
                         check=True, capture_output=True,
                         text=True).stdout.replace('\\\n', ' ')
    return {tool: shlex.split(ln.split(tool, 1)[1])
            for ln in out.splitlines()
            for tool in ('compare_pretraining.py',
                         'merge_science_records.py') if tool in ln}


def test_make_science_ablations_arguments():
    """`make science-ablations` runs the full grid's methods on make
    science's work dir and data (so its CCOP, MoCo v2 and random-init runs
    are reused) at three run seeds by default (the record's), into its own
    record."""
    from ccop_plugin.apis import comparison_cli as cp

    def parsed(target, *extra):
        return cp.parse_options(
            _make_tool_args(target, *extra)['compare_pretraining.py'])

    abl, sci = parsed('science-ablations'), parsed('science')
    assert set(abl.methods) == set(protocol_methods(SCIENCE))
    assert abl.seeds == [0, 1, 2]
    assert abl.record.endswith('science_ablations.json')
    assert sci.record.endswith('science.json')
    assert abl.cfg == sci.cfg and abl.data_seeds == sci.data_seeds
    assert abl.supervised
    assert parsed('science-ablations',
                  'SCIENCE_ABLATION_SEEDS=3').seeds == [0, 1, 2]


def test_make_science_ablations_more_arguments():
    """`make science-ablations-more SCIENCE_MORE_SEED=S` runs run seed S of
    the seven methods on make science's data and work dir into its own
    record (the probe's control is make science's), then joins every such
    record with make science's and make science-ablations' records (oldest
    first)."""
    from ccop_plugin.apis import comparison_cli as cp
    commands = _make_tool_args

    sci = cp.parse_options(commands('science')['compare_pretraining.py'])
    more = commands('science-ablations-more', 'SCIENCE_MORE_SEED=4')
    run = cp.parse_options(more['compare_pretraining.py'])
    assert run.seeds == [4] and run.data_seeds == sci.data_seeds
    assert run.cfg == sci.cfg and not run.supervised
    assert set(run.methods) == set(protocol_methods(SCIENCE))
    assert run.record == 'docs/benchmarks/science_ablations_seed4.json'
    merge = more['merge_science_records.py']
    assert merge[:2] == ['docs/benchmarks/science.json',
                         'docs/benchmarks/science_ablations.json']
    assert merge[merge.index('--record') + 1] == (
        'docs/benchmarks/science_ablations_merged.json')
