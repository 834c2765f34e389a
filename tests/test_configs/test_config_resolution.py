"""Every config under ``configs/`` resolves to its committed snapshot.

Refactoring the configs (inheriting ``_base_`` files and sibling configs
instead of repeating blocks) must not change what any of them resolves to:
``tests/data/config_snapshots.json`` holds ``Config.fromfile(path).to_dict()``
of every config (``_base_`` files excluded), JSON-normalised (tuples become
lists). Only the keys the runner and the tools read are compared: the
helper variables below exist to build those keys (and to be inherited), so a
refactor may add, remove or alias them. Regenerate an entry only for a
deliberate change of a resolved value:

    PYTHONPATH=$PWD python tests/test_configs/test_config_resolution.py \
        configs/x/y.py [...]
"""
import glob
import json
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SNAPSHOTS = osp.join(REPO, 'tests/data/config_snapshots.json')
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs/**/*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, REPO).split(osp.sep))


# top-level names that only feed other keys (nothing reads them from the
# resolved config); ``proposal_*`` are the proposal pipeline base's names
HELPER_VARS = {
    'crop_size', 'photometric_pipeline', 'view_pipeline', 'region_pipeline',
    'max_iters', 'max_epochs', 'warmup_epochs', 'pretrained_ckpt', 'norm_cfg',
}
HELPER_PREFIXES = ('proposal_', 'tiny_', 'ssl_protocol_', 'object_branch_',
                   'science_')


def _runtime_keys(cfg_dict):
    return {k: v for k, v in cfg_dict.items()
            if k not in HELPER_VARS and not k.startswith(HELPER_PREFIXES)}


def resolve(rel_path):
    """The resolved config as plain JSON data (what the snapshot stores)."""
    from mmengine.config import Config

    import ccop_plugin  # noqa: F401  (custom_imports of the configs)
    cfg = Config.fromfile(osp.join(REPO, rel_path))
    return json.loads(json.dumps(cfg.to_dict(), sort_keys=True))


def _load():
    with open(SNAPSHOTS) as f:
        return json.load(f)


def test_every_config_has_a_snapshot():
    assert sorted(_load()) == CONFIGS


@pytest.mark.parametrize('rel_path', CONFIGS)
def test_config_resolves_to_snapshot(rel_path):
    assert _runtime_keys(resolve(rel_path)) == _runtime_keys(
        _load()[rel_path])


def update(paths=None):
    """Write the snapshots of ``paths`` (all configs when None)."""
    snaps = _load() if osp.exists(SNAPSHOTS) else {}
    for p in paths or CONFIGS:
        snaps[p] = resolve(p)
    snaps = {k: snaps[k] for k in sorted(snaps) if k in CONFIGS}
    with open(SNAPSHOTS, 'w') as f:
        json.dump(snaps, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    update(sys.argv[1:] or None)
