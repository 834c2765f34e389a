import copy
import logging
import os
import os.path as osp
import uuid

import pytest

# Keep the suite deterministic and light on 2-core machines: one intra-op
# thread (the tests' tensors are small). With two, torch's thread barriers
# stall whenever the cores are busy: under a load of about 13 on 2 cores a
# linear probe took 30 s instead of 1.8 s, 4 Runner tests 127 s instead of
# 32 s (DEVELOPERS.md, measured facts). Set OMP_NUM_THREADS to override.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')


def _scopes_now():
    from mmengine.registry import DefaultScope
    return copy.copy(DefaultScope._instance_dict)


_SCOPES_AT_START = _scopes_now()


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Leave mmengine's global default scope as it was after each test.

    Runners and ``register_all_modules`` make 'mmdet' or 'mmpretrain' the
    current scope for the whole process; without this, a test's outcome
    would depend on which tests ran before it. The state restored is the
    one of the session's start, so that a session fixture (built inside
    the first test that asks for it) cannot leak a scope either.
    """
    from mmengine.registry import DefaultScope
    yield
    DefaultScope._instance_dict = copy.copy(_SCOPES_AT_START)


@pytest.fixture
def tiny_proposal_coco():
    """:func:`ccop_plugin.testing.write_tiny_proposal_coco` (random JPEGs
    and a proposal file, written where the test says), for tests in any
    folder."""
    from ccop_plugin.testing import write_tiny_proposal_coco
    return write_tiny_proposal_coco


@pytest.fixture(scope='session')
def tiny_proposal_data(tmp_path_factory):
    """``tiny_proposal_data(num_imgs=4, with_anns=True, **kw)``: the folder
    of :func:`ccop_plugin.testing.write_tiny_proposal_coco` with these
    arguments, written once per session and shared: read it, never write
    into it (use ``tiny_proposal_coco`` for a folder of your own)."""
    from ccop_plugin.testing import write_tiny_proposal_coco
    made = {}

    def get(num_imgs=4, with_anns=True, **kw):
        key = (num_imgs, with_anns, tuple(sorted(kw.items())))
        if key not in made:
            made[key] = write_tiny_proposal_coco(
                tmp_path_factory.mktemp('tiny_proposals'),
                num_imgs=num_imgs, with_anns=with_anns, **kw)
        return made[key]

    return get


@pytest.fixture(scope='session')
def tiny_detection_data(tmp_path_factory):
    """Data root of :func:`ccop_plugin.testing.write_tiny_detection_coco`
    (2 train + 1 val synthetic images of 64 px with boxes and masks),
    written once per session and shared: read it, never write into it."""
    from ccop_plugin.testing import write_tiny_detection_coco
    return write_tiny_detection_coco(
        tmp_path_factory.mktemp('tiny_detection') / 'synth')


@pytest.fixture(scope='session')
def tiny_ccop_checkpoint(tmp_path_factory):
    """Path of a real CCOP checkpoint of the narrow model
    (:func:`ccop_plugin.testing.write_tiny_ccop_checkpoint`, a few MB),
    written once per session: load it, never change it."""
    from ccop_plugin.testing import write_tiny_ccop_checkpoint
    return write_tiny_ccop_checkpoint(
        tmp_path_factory.mktemp('tiny_ccop') / 'ccop_narrow.pth')


@pytest.fixture(scope='session')
def tiny_main_job(tmp_path_factory):
    """``(cfg, results)`` of the main job run once per session on
    :func:`ccop_plugin.testing.tiny_main_job_config` (every stage computed,
    3 pre-training iterations). Tests may rerun it in place (every stage is
    then reused); they must not change its settings or its files."""
    from ccop_plugin.apis.main_job import run_main_job
    from ccop_plugin.testing import tiny_main_job_config
    cfg = tiny_main_job_config(str(tmp_path_factory.mktemp('main_job') /
                                   'demo'))
    return cfg, run_main_job(cfg)


CONFIGS = osp.join(osp.dirname(__file__), '..', 'configs')


@pytest.fixture
def tiny_runner(tiny_proposal_data, tmp_path):
    """Build a runner for a tiny pre-training config on generated data.

    ``tiny_runner(cfg_file, iters=3, with_anns=True, num_imgs=4, edit=None,
    narrow=True)``: ``iters`` iterations at a constant lr for
    iteration-based configs, logging every iteration, no checkpoint (a test
    that needs one sets the hook in ``edit``; ``light_checkpoints`` leaves
    out the optimizer's state); the model is the
    narrow one of :func:`ccop_plugin.testing.narrow_resnet18` unless
    ``narrow`` is False; the images are the session's shared
    ``tiny_proposal_data``, the work dir ``tmp_path / 'work'``;
    ``edit(cfg)`` may change the config before the runner is built.
    """

    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from ccop_plugin.testing import light_checkpoints, narrow_resnet18

    def build(cfg_file, iters=3, with_anns=True, num_imgs=4, edit=None,
              narrow=True):
        data = tiny_proposal_data(num_imgs=num_imgs, with_anns=with_anns)
        cfg = Config.fromfile(osp.join(CONFIGS, cfg_file))
        if narrow:
            narrow_resnet18(cfg.model)
        cfg.train_dataloader.dataset.data_root = str(data) + '/'
        cfg.train_dataloader.dataset.ann_file = 'proposals.json'
        cfg.train_dataloader.dataset.data_prefix = dict(img_path='images/')
        if cfg.train_cfg.type == 'IterBasedTrainLoop':
            cfg.train_cfg.max_iters = iters
            cfg.param_scheduler = [dict(type='ConstantLR', factor=1.,
                                        by_epoch=False)]
        cfg.work_dir = str(tmp_path / 'work')
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=1000, save_last=False)
        light_checkpoints(cfg)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        cfg.launcher = 'none'
        if edit is not None:
            edit(cfg)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            return Runner.from_cfg(cfg)

    return build


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.levelno, record.getMessage()))


@pytest.fixture
def mm_logs():
    """``(levelno, message)`` of everything logged through mmengine's real
    ``print_log(..., logger='current')`` during the test (a fresh current
    ``MMLogger``, removed afterwards). Unlike a monkeypatched ``print_log``
    it fails the test on an argument the logger refuses, such as a level
    given as a string."""
    from mmengine.logging import MMLogger
    name = f'mm_logs_{uuid.uuid4().hex}'
    logger = MMLogger.get_instance(name, log_level='DEBUG')
    handler = _Records()
    logger.addHandler(handler)
    old_raise, logging.raiseExceptions = logging.raiseExceptions, True
    try:
        yield handler.records
    finally:
        logging.raiseExceptions = old_raise
        logger.removeHandler(handler)
        MMLogger._instance_dict.pop(name, None)


# What the run writes under pytest's base temp folder
# (ccop_plugin.testing.disk_usage; DEVELOPERS.md "Test tiers").
_TMP_USAGE = pytest.StashKey()
_FROM_WORKERS = pytest.StashKey()


def pytest_addoption(parser):
    parser.addoption(
        '--tmp-usage', type=int, default=10, metavar='N',
        help='print the bytes the run wrote under the base temp folder '
             'and the N test modules that wrote the most (-1: all, 0: off)')


@pytest.fixture(scope='session', autouse=True)
def _tmp_usage(request, tmp_path_factory):
    """Starts the disk-usage record of the run (see the hooks below)."""
    if request.config.getoption('tmp_usage'):
        from ccop_plugin.testing.disk_usage import TmpUsage
        request.config.stash[_TMP_USAGE] = TmpUsage(
            tmp_path_factory.getbasetemp())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    usage = item.config.stash.get(_TMP_USAGE, None)
    if usage is not None:  # before the tmp_path fixture removes the folder
        usage.after_test(item.nodeid,
                         getattr(item, 'funcargs', {}).get('tmp_path'))
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    usage = session.config.stash.get(_TMP_USAGE, None)
    # before pytest removes the base folder; not in pytest-xdist's
    # controller, whose record holds what its workers measured (its base
    # folder holds only theirs)
    if usage is not None and not session.config.stash.get(_FROM_WORKERS,
                                                          False):
        usage.at_session_end()
        if hasattr(session.config, 'workeroutput'):  # a pytest-xdist worker
            session.config.workeroutput['tmp_usage'] = usage.state()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist's controller: add a finished worker's measurements."""
    state = getattr(node, 'workeroutput', {}).get('tmp_usage')
    if state is None:
        return
    from pathlib import Path

    from ccop_plugin.testing.disk_usage import TmpUsage
    usage = node.config.stash.get(_TMP_USAGE, None)
    if usage is None:
        usage = TmpUsage(Path(state['basetemp']).parent)
        node.config.stash[_TMP_USAGE] = usage
        node.config.stash[_FROM_WORKERS] = True
    usage.merge(state, prefix=Path(state['basetemp']).name + '/')


def pytest_terminal_summary(terminalreporter, config):
    usage = config.stash.get(_TMP_USAGE, None)
    if usage is not None:
        terminalreporter.write_sep('=', 'bytes written under the base temp '
                                   'folder (--tmp-usage)')
        for line in usage.summary_lines(config.getoption('tmp_usage')):
            terminalreporter.write_line(line)
