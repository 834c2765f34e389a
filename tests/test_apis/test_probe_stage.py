"""The main job's probe stage: what its key depends on."""
from ccop_plugin.apis.job_config import MainJobConfig
from ccop_plugin.apis.stages import ProbeStep


def _probe(checkpoint, data_root, seed=0, val_split='val'):
    return dict(acc=0.5)


def test_a_new_probe_version_is_a_new_stage_key(tmp_path):
    """A probe whose results change for the same input (other layers,
    another classifier choice) declares a new ``version``: the stage must
    not reuse results of the old one."""
    cfg = MainJobConfig(work_dir=str(tmp_path))
    plain = ProbeStep(cfg, 'ccop', _probe).settings()
    assert 'version' not in plain  # probes without one keep their keys

    def versioned(checkpoint, data_root, seed=0, val_split='val'):
        return dict(acc=0.5)

    versioned.version = 2
    one = ProbeStep(cfg, 'ccop', versioned).settings()
    versioned.version = 3
    two = ProbeStep(cfg, 'ccop', versioned).settings()
    assert one['version'] == 2 and two['version'] == 3
    assert {k: v for k, v in one.items() if k != 'version'} == {
        k: v for k, v in two.items() if k != 'version'}


def test_the_linear_probe_declares_its_version():
    from ccop_plugin.evaluation.linear_probe import VERSION, linear_probe
    assert linear_probe.version == VERSION >= 2
