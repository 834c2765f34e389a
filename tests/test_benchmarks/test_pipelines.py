"""The data-pipeline benchmark times the pipelines the configs train with."""
import json

from mmengine.config import Config

from ccop_plugin.benchmarks import pipelines as bp


def test_default_pipelines_are_those_of_the_configs():
    """No private copy that could drift: the benchmark's pipelines are read
    from CCOP's packaged config and mmpretrain's MoCo v2 config."""
    got = bp.config_pipelines()
    assert set(got) == {'mocov2', 'ccop'}
    ccop = Config.fromfile(bp.ccop_config_path())
    assert got['ccop'] == ccop.train_dataloader.dataset.pipeline
    assert [t['type'] for t in got['ccop']] == [
        'LoadImageFromFile', 'LoadProposals', 'BoxAwareMultiView',
        'PackBoxSelfSupInputs']
    moco = Config.fromfile(bp.mocov2_config_path())
    assert got['mocov2'] == moco.train_dataloader.dataset.pipeline
    got['ccop'].clear()  # a fresh copy each call
    assert bp.config_pipelines()['ccop']


def test_cv2_crop_variant_changes_only_the_crop_backend():
    pipe = bp.config_pipelines()['mocov2']
    cv2 = bp.with_cv2_crop(pipe)
    crop = cv2[1]['transforms'][0][0]
    assert crop['type'] == 'RandomResizedCrop' and crop['backend'] == 'cv2'
    assert pipe[1]['transforms'][0][0]['backend'] == 'pillow'
    crop['backend'] = 'pillow'
    assert json.dumps(cv2) == json.dumps(pipe)  # tuples become lists


def test_benchmark_pipelines_smoke(capsys):
    args = bp.build_parser().parse_args(['--num-images', '2', '--repeats',
                                         '1'])
    rows = bp.run_pipeline_benchmark(args)
    assert [r['name'] for r in rows] == ['mocov2', 'ccop']
    assert all(r['img_per_s'] > 0 for r in rows)
    assert rows[0]['boxes_per_img'] is None  # MoCo v2 carries no boxes
    assert rows[1]['boxes_per_img'] > 0
    out = [line for line in capsys.readouterr().out.splitlines()
           if line.startswith('|')]
    assert out[0].startswith('| pipeline | images/s |')
    assert out[2].startswith('| mocov2 |') and out[3].startswith('| ccop |')
