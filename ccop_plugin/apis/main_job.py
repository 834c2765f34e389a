"""The end-to-end main job: data -> proposals -> pre-training -> transfer.

Configs are the packaged ones (:func:`ccop_plugin.utils.get_config_path`),
so the job runs from any folder after a regular ``pip install``.

Stages (:mod:`ccop_plugin.apis.stages`, each resumable, each reused when its
result is already there and was made with the same settings -- see
:class:`~ccop_plugin.apis.stage.Stage`; a change of settings recomputes that
stage and the stages after it, and the log and the report say so):

1. ``data``: the embedded synthetic COCO dataset.
2. ``proposals``: selective search over the unlabeled split.
3. ``pretrain_<method>``: pre-training in mmengine's ``Runner``, in this
   process (nothing for the scratch baseline); an interrupted run resumes
   from its newest intact checkpoint.
4. ``convert_<method>``: the query encoder to an mmdet checkpoint.
5. ``finetune_<method>``: Mask R-CNN fine-tuning and COCO evaluation.
6. ``test_<method>`` (when the data has a test split, ``num_test > 0``): the
   fine-tuned detector evaluated once on the held-out test split.
7. ``probe_<method>`` (when a probe is passed in): its accuracy for the
   pre-trained backbone.

Seeds: ``seed`` makes the data (and the proposals); ``run_seed`` (default:
``seed``) seeds pre-training, fine-tuning and the probe. The stages of a run
seed other than ``seed`` live in ``<stage>_<method>_seed<s>``.

One job per work dir: :func:`run_main_job` and
:func:`ccop_plugin.apis.comparison.run_comparison` hold the work dir's lock
for the whole run (a second job is refused with one line naming the first),
and write only files they own: the report files are listed in
``<work_dir>/.ccop_main_job_manifest.json`` with their content, and a file
in their way that the job did not write (or that changed since) is refused
before any work.
"""
import os.path as osp
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Dict, Optional

from ccop_plugin.utils.owned_folder import FolderLock, Manifest
from .job_config import MainJobConfig, log
from .methods import IMAGE_FOLDER_METHODS, pretrain_config, protocol_methods
from .report import write_report
from .stage import run_step
from .stages import (
    ConvertStep,
    DataStep,
    FinetuneStep,
    PretrainStep,
    Probe,
    ProbeStep,
    ProposalsStep,
    TestStep,
)

__all__ = [
    'MainJobConfig', 'job_lock', 'claim_outputs', 'record_outputs',
    'prepare_data', 'run_method', 'run_main_job'
]

OUTPUT_MANIFEST = '.ccop_main_job_manifest.json'
#: The files the report writes in the work dir (the only ones it replaces).
REPORT_FILES = ('report.md', 'comparison.md', 'figures/proposals.png',
                'figures/pretrain_losses.png', 'figures/curriculum.png',
                'figures/comparison.png', 'figures/detections.png')


def job_lock(work_dir: str) -> FolderLock:
    """The work dir's lock, held by one main job (or comparison) at a time.

    Raises:
        FolderInUseError: another job holds it (the message names it).
    """
    return FolderLock(work_dir, what='main job work dir',
                      hint='wait for it to finish, or pass another '
                      '--work-dir')


def _manifest(work_dir: str) -> Manifest:
    return Manifest(work_dir, OUTPUT_MANIFEST, tool='ccop_plugin main job',
                    note='report files this job wrote (with their content); '
                    'it replaces only these')


def claim_outputs(work_dir: str) -> Manifest:
    """Check, before any work, that the report files may be replaced.

    A work dir of a job from before the manifest existed (it has
    ``.stages/`` but no manifest) owns the report files it holds.

    Raises:
        FileExistsError: a report file exists that the job did not write,
            or that changed since it wrote it (nothing is written).
    """
    manifest = _manifest(work_dir)
    if not manifest.exists and osp.isdir(osp.join(work_dir, '.stages')):
        manifest.record(REPORT_FILES)  # an older job's own outputs
    foreign = manifest.foreign(REPORT_FILES)
    if foreign:
        raise FileExistsError(
            f'{osp.join(work_dir, foreign[0])} was not written by the main '
            f'job or was changed since (not in {manifest.path} with this '
            f'content; {len(foreign)} such file(s)); nothing was written: '
            'move it away or pass another --work-dir')
    return manifest


def record_outputs(manifest: Manifest) -> None:
    """List the report files just written, with their content."""
    manifest.record(REPORT_FILES)


def prepare_data(cfg: MainJobConfig) -> Dict:
    """The ``data`` and ``proposals`` stages."""
    out = dict(data=run_step(cfg.work_dir, DataStep(cfg)))
    out['proposals'] = run_step(cfg.work_dir, ProposalsStep(cfg),
                                [out['data']])
    return out


def run_method(cfg: MainJobConfig, method: str,
               upstream: Optional[Dict] = None,
               seed: Optional[int] = None,
               probe: Optional[Probe] = None) -> Dict:
    """Pre-train (unless ``method == 'none'``), convert, fine-tune, and
    evaluate on the test split when the data has one.

    Args:
        cfg: The job's settings.
        method: A key of :data:`METHODS`.
        upstream: The records of the ``data`` and ``proposals`` stages
            (:func:`prepare_data`), whose keys are part of this method's keys.
        seed: Run seed (pre-training, fine-tuning, probe); None:
            ``cfg.train_seed``. The data stays that of ``cfg.seed``.
        probe: Also measure this probe's accuracy (see
            :data:`ccop_plugin.apis.stages.Probe`);
            ``results['probe']['acc']`` is None when it fails (logged).
    """
    if method != 'none' and pretrain_config(method, cfg.protocol) is None:
        raise ValueError(f'unknown method {method!r} for the protocol '
                         f'{cfg.protocol}; known: '
                         f'{", ".join(protocol_methods(cfg.protocol))}')
    if seed is not None:
        cfg = replace(cfg, run_seed=seed)
    upstream = upstream or prepare_data(cfg)
    wd = cfg.work_dir
    results = {}
    init = None
    before = [upstream['data']]  # what fine-tuning depends on
    if method != 'none':
        # methods reading the proposal file depend on it; the others only
        # on the images
        source = 'data' if method in IMAGE_FOLDER_METHODS else 'proposals'
        results['pretrain'] = run_step(wd, PretrainStep(cfg, method),
                                       [upstream[source]])
        results['convert'] = run_step(
            wd, ConvertStep(cfg, method, results['pretrain']['checkpoint']),
            [results['pretrain']])
        init = results['convert']['checkpoint']
        before.append(results['convert'])
    results['finetune'] = run_step(wd, FinetuneStep(cfg, method, init),
                                   before)
    if cfg.has_test:
        results['test'] = run_step(
            wd, TestStep(cfg, method, results['finetune']['checkpoint']),
            [results['finetune'], upstream['data']])
    if probe is not None:
        results['probe'] = _run_probe(cfg, method, probe, upstream,
                                      results.get('pretrain'))
    return results


def _run_probe(cfg: MainJobConfig, method: str, probe: Probe,
               upstream: Dict, pretrain: Optional[Dict]) -> Dict:
    step = ProbeStep(cfg, method, probe,
                     pretrain['checkpoint'] if pretrain else None)
    up = [upstream['data']] + ([pretrain] if pretrain else [])
    try:
        return run_step(cfg.work_dir, step, up)
    except Exception as e:  # a missing figure, not a lost comparison
        log(f'{step.name}: the probe failed ({type(e).__name__}: {e}); '
            'probe_acc recorded as null')
        return dict(acc=None, run=f'failed ({type(e).__name__}: {e})')


def run_main_job(cfg: MainJobConfig) -> Dict:
    """Run the main job's methods (``cfg.job_methods``) and write
    ``<work_dir>/report.md``.

    On a user's dataset (``cfg.train_ann``) the settings taken from the
    data (image scale, device, batch) are resolved first
    (:func:`ccop_plugin.apis.user_data.resolve_user_config`).

    Raises:
        FolderInUseError: another job runs in ``cfg.work_dir``.
        FileExistsError: a report file in the work dir is not the job's.
        UserDataError: a file of the user's dataset is unusable (the
            message names it).
    """
    from mmengine.dist import get_rank
    t0 = time.time()
    main = get_rank() == 0  # the other ranks of a distributed job only
    with job_lock(cfg.work_dir) if main else nullcontext():  # train
        outputs = claim_outputs(cfg.work_dir) if main else None
        if cfg.user_data:
            from .user_data import resolve_user_config
            cfg = resolve_user_config(cfg)
        methods = list(cfg.job_methods)
        results = prepare_data(cfg)
        for method in methods:
            results[method] = run_method(cfg, method, results)
        if not main:
            return results
        report = write_report(cfg, results, methods)
        record_outputs(outputs)
    log(f'main job done in {time.time() - t0:.0f} s; report: {report}')
    return results
