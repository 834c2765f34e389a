"""The probe's controls record: groups of probe results, their checks."""
import json

import pytest

from ccop_plugin.evaluation import cli
from ccop_plugin.evaluation.probe_controls import (
    parse_groups,
    probe_controls,
    probe_controls_table,
    read_probe_controls,
    write_probe_controls,
)
from ccop_plugin.evaluation.probe_data import ProbeError


def _result(tmp_path, name, acc, seed=0, **over):
    res = dict(acc=acc, seed=seed, data_root=str(tmp_path / 'data'),
               version=2, stages=[2, 3], pool=2, train_split='train',
               select_split='val', val_split='test', feature_dim=768,
               n_train=10, n_val=8, features='backbone', chance=0.25,
               select_acc=acc, train_acc=1., weight_decay=1., max_iter=10,
               encoder=dict(source='random init', seed=seed))
    res.update(over)
    path = str(tmp_path / f'{name}.json')
    with open(path, 'w') as f:
        json.dump(res, f)
    return path


def test_checks_supervised_target_and_one_sd_over_random(tmp_path):
    rnd = [_result(tmp_path, f'r{s}', a, s)
           for s, a in enumerate((0.15, 0.16, 0.17, 0.18, 0.19))]
    sup = [_result(tmp_path, 'sup', 0.72)]
    good = [_result(tmp_path, f'g{s}', a) for s, a in
            enumerate((0.21, 0.22, 0.23, 0.24, 0.25))]
    weak = [_result(tmp_path, f'w{s}', a) for s, a in
            enumerate((0.17, 0.18, 0.19, 0.18, 0.18))]
    few = good[:4]
    rec = probe_controls(dict(random_init=rnd, supervised=sup, good=good,
                              weak=weak, few=few), command='x')
    g = rec['groups']['random_init']
    assert g['acc_mean'] == pytest.approx(0.17)
    assert g['acc_sd'] == pytest.approx(0.0158, abs=1e-4)  # sample sd
    assert rec['checks']['supervised']['passes']
    assert rec['checks']['good_vs_random']['passes']
    assert rec['checks']['good_vs_random']['diff'] == pytest.approx(0.06)
    assert not rec['checks']['weak_vs_random']['passes']  # 0.01 !> 0.016
    assert not rec['checks']['few_vs_random']['passes']  # 4 runs < 5
    out = str(tmp_path / 'controls.json')
    write_probe_controls(out, rec)
    assert read_probe_controls(out)['protocol']['probe']['stages'] == [2, 3]
    table = open(str(tmp_path / 'controls.md')).read()
    assert table == probe_controls_table(read_probe_controls(out))
    assert '| supervised | seed 0 | 72.0 | 72.0 +- n/a |' in table
    assert '| random_init | seed 0, seed 1, seed 2, seed 3, seed 4 |' in table
    assert '| test accuracy per run (%) |' in table
    # results scored on val (a selection sweep) say so; they used to be
    # headed "test accuracy"
    on_val = probe_controls(dict(random_init=[_result(
        tmp_path, 'v', 0.2, val_split='val')]), command='x')
    assert '| val accuracy per run (%) |' in probe_controls_table(on_val)
    ckpt = _result(tmp_path, 'm', 0.3, encoder=dict(
        source='work/run_seed2/iter_400.pth', seed=None))
    rec = probe_controls(dict(m=[ckpt]))
    assert rec['groups']['m']['runs'][0]['run'] == 'run_seed2'
    # a foreign file at the record's path is never replaced
    foreign = str(tmp_path / 'mine.json')
    with open(foreign, 'w') as f:
        json.dump(dict(a=1), f)
    with pytest.raises(FileExistsError, match='mine.json'):
        write_probe_controls(foreign, rec)


def test_runs_probed_otherwise_are_refused_naming_the_file(tmp_path):
    a = _result(tmp_path, 'a', 0.2)
    b = _result(tmp_path, 'b', 0.3, stages=[1, 2])
    with pytest.raises(ProbeError, match=r'b\.json: probed with stages'):
        probe_controls(dict(random_init=[a], m=[b]))
    c = _result(tmp_path, 'c', 0.3, data_root=str(tmp_path / 'other'))
    with pytest.raises(ProbeError, match=r'c\.json: probed with data_root'):
        probe_controls(dict(random_init=[a], m=[c]))
    with open(str(tmp_path / 'bad.json'), 'w') as f:
        f.write('{')
    with pytest.raises(ProbeError, match='bad.json: not JSON'):
        probe_controls(dict(m=[str(tmp_path / 'bad.json')]))
    with pytest.raises(ProbeError, match='NAME=FILE'):
        parse_groups(['random_init'])
    assert parse_groups(['a=x,y', 'a=z']) == dict(a=['x', 'y', 'z'])


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from ccop_plugin.datagen import generate_synthetic_coco
    root = str(tmp_path_factory.mktemp('controls') / 'data')
    generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=6,
                            num_val=4, img_size=64, min_scale=0.15,
                            max_scale=0.3)
    return root


def test_cli_stages_choose_the_probed_layers(tiny_data, tmp_path):
    """``--stages C3 C4``: the probe pools C3 and C4 (width 16: 32 + 64
    channels, one cell each since version 4), the default since version 3;
    ``--stages C4
    C5`` the layers of version 2."""
    out = str(tmp_path / 'c34.json')
    assert cli.main(['none', '--data-root', tiny_data, '--width', '16',
                     '--stages', 'C4', 'C3', '--max-iter', '20',
                     '--out', out]) == 0
    with open(out) as f:
        res = json.load(f)
    assert res['stages'] == [1, 2] and res['feature_dim'] == 32 + 64
    assert cli.main(['none', '--data-root', tiny_data, '--width', '16',
                     '--max-iter', '20', '--out', out, '--overwrite']) == 0
    with open(out) as f:
        assert json.load(f)['stages'] == [1, 2]
    assert cli.main(['none', '--data-root', tiny_data, '--width', '16',
                     '--stages', 'C5', 'C4', '--max-iter', '20', '--out',
                     out, '--overwrite']) == 0
    with open(out) as f:
        assert json.load(f)['feature_dim'] == 64 + 128


def test_cli_writes_the_record_or_one_error_line(tmp_path, capsys):
    from ccop_plugin.evaluation.probe_controls import main
    r = _result(tmp_path, 'r', 0.2)
    s = _result(tmp_path, 's', 0.8)
    out = str(tmp_path / 'c.json')
    assert main(['--group', f'random_init={r}', '--group',
                 f'supervised={s}', '--out', out]) == 0
    assert '| supervised | 80.0 | >= 70.0 | yes |' in capsys.readouterr().out
    rec = read_probe_controls(out)
    assert rec['protocol']['command'].startswith(
        'python tools/probe_controls.py --group random_init=')
    assert main(['--group', 'random_init=' + str(tmp_path / 'no.json'),
                 '--out', out]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'no.json' in err
    assert err.count('\n') == 1
