"""Dataset-scale, parallel, resumable selective search.

:func:`run_proposals` processes one shard of an image list with a pool of
worker processes (OpenCV limited to one thread each), appends one JSON line
per finished image to the shard's file in the work dir, skips images that any
shard file already holds, and (for an unsharded run) merges the work dir into
the final COCO-style JSON.
"""
import os.path as osp
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
)

from ..utils import process_pool
from .config import ProposalConfig
from .run_types import (
    ProposalRunInterrupted,
    RunOptions,
    RunSummary,
    Task,
    WorkerFn,
    format_summary,
)
from .search import propose, read_image
from .sources import ImageEntry, shard_entries
from .store import (
    ProposalStateError,
    ShardWriter,
    WorkDirLock,
    boxes_to_record,
    check_out_not_input,
    check_out_replaceable,
    check_writable,
    clear_work_dir,
    finished_records,
    merge_work_dir,
    prepare_work_dir,
    shard_path,
    source_stamp,
)


def process_image(task: Task, cfg: ProposalConfig) -> Dict[str, Any]:
    """Proposals of one image as a shard-file record (never raises)."""
    k, img_id, file_name, path = task
    rec: Dict[str, Any] = {'k': k, 'id': img_id, 'file_name': file_name}
    # stat before reading: if the file is replaced meanwhile, the stamp is
    # the old one and a resumed run recomputes the image (never the reverse)
    src = source_stamp(path)
    # Only Exception subclasses are per-image failures: KeyboardInterrupt
    # and the runner's SIGTERM exception (BaseException) stop the run and
    # leave the image unrecorded.
    try:
        img = read_image(path)
        res = propose(img, cfg, file_name)
    except MemoryError:
        rec.update(error='out of memory (try --max-size or --max-pixels)',
                   src=src)
        return rec
    except ValueError as e:  # unreadable / corrupt image (message names it)
        rec.update(error=str(e), src=src)
        return rec
    except Exception as e:  # noqa: BLE001 - any per-image failure is recorded
        rec.update(error=f'{type(e).__name__}: {e}', src=src)
        return rec
    h, w = img.shape[:2]
    rec.update(width=int(w), height=int(h),
               boxes=boxes_to_record(res['boxes']), stage=int(res['stage']),
               n_cand=int(res['num_candidates']),
               sec=round(float(res['seconds']), 3), src=src)
    if res.get('search_hw') is not None:
        rec['search_hw'] = [int(v) for v in res['search_hw']]
    return rec


def _limit_threads() -> None:
    """Worker setup: one OpenCV/torch thread per worker process."""
    import cv2
    cv2.setNumThreads(1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _crash_record(task: Task) -> Dict[str, Any]:
    """Record of an image that killed its worker process twice."""
    return {'k': task[0], 'id': task[1], 'file_name': task[2],
            'error': 'worker process died on this image (crash or killed '
                     'for memory; try --max-size)'}


def worker_context(start_method: Optional[str] = None):
    """The workers' process context (fork server preloading this module)."""
    return process_pool.mp_context(start_method, [__name__])


def prestart_workers(start_method: Optional[str] = None) -> None:
    """Start the fork server in the background (it imports this package,
    a few seconds) so that it overlaps with the caller's own start-up."""
    process_pool.prestart(start_method, [__name__])


def iter_results(tasks: Iterable[Task], cfg: ProposalConfig, workers: int,
                 worker_fn: WorkerFn = process_image,
                 start_method: Optional[str] = None
                 ) -> Iterator[Dict[str, Any]]:
    """Records of ``tasks`` in completion order, computed by ``workers``
    processes (``workers == 1``: in this process) of a crash-isolating pool
    (:func:`~ccop_plugin.utils.process_pool.isolated_map`): an image that
    kills its worker twice is reported as a failure instead of stopping the
    run.

    Args:
        tasks: ``(index, image id, file_name, path)`` tuples.
        cfg: Proposal settings.
        workers: Number of worker processes.
        worker_fn: Picklable ``fn(task, cfg) -> record`` (tests inject
            failures through it).
        start_method: multiprocessing start method (default: forkserver).
    """
    return process_pool.isolated_map(
        worker_fn, cfg, tasks, workers, on_crash=_crash_record,
        setup=_limit_threads, start_method=start_method, preload=[__name__])


def run_proposals(entries: List[ImageEntry], img_dir: str,
                  cfg: ProposalConfig, work_dir: str,
                  options: Optional[RunOptions] = None) -> RunSummary:
    """Compute proposals for one shard of ``entries``; resumable.

    Args:
        entries: Ordered image list of the whole run (all shards).
        img_dir: Folder that ``file_name`` is relative to.
        cfg: Proposal settings (must match the work dir's on resume).
        work_dir: Folder of the run's state (see :mod:`.store`).
        options: How to run (output, workers, shard, ...); defaults if
            ``None``.

    Returns:
        RunSummary: counts, proposals per image, timings, merge result.

    Raises:
        ProposalRunInterrupted: SIGTERM stopped the run (results kept).
        KeyboardInterrupt: Ctrl-C stopped the run (results kept).
        ProposalStateError: The work dir or output cannot be used.
    """
    opts = options or RunOptions()
    log = opts.log
    t_start = time.perf_counter()
    # Everything that can be refused is checked before any work is done
    # (also by each shard of a sharded run: the merge writes ``out``).
    if opts.out is not None:
        check_out_not_input(opts.out, opts.inputs, img_dir, entries)
        check_writable(opts.out, '--out')
        check_out_replaceable(work_dir, opts.out, opts.overwrite)
    check_writable(work_dir, '--work-dir', is_dir=True)
    lock = WorkDirLock(work_dir, exclusive=opts.overwrite)
    writer = None
    # SIGTERM raises Stopped (a BaseException) from here on: the image in
    # flight is not recorded and temporary files are removed on the way out.
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, process_pool.raise_stopped)
    except ValueError:  # not the main thread
        old_term = None
    try:
        if opts.overwrite:
            clear_work_dir(work_dir)
            lock.share()
        prepare_work_dir(work_dir, entries, cfg.to_dict(), opts.source or {})
        mine = shard_entries(entries, opts.shard)
        # Readers skip a torn last line, so reading before the writer trims
        # it gives the same set.
        done = finished_records(work_dir)
        writer = ShardWriter(shard_path(work_dir, opts.shard))
        if writer.dropped_bytes:
            log(f'dropped a truncated last record ({writer.dropped_bytes} '
                f'bytes) from {writer.path}; that image is processed again')
        plan = _plan(mine, img_dir, done, opts.retry_failed)
        summary, stop = _run_tasks(plan, mine, cfg, writer, opts, t_start)
        writer.close()
        if stop is not None:
            _stopped(summary, stop, writer.path, log, t_start)
        if opts.out is not None and opts.shard[1] == 1:
            summary.merge = merge_work_dir(work_dir, opts.out, log=log,
                                           overwrite=opts.overwrite)
    except process_pool.Stopped:  # before or after the search loop
        log(f'interrupted; the results in {work_dir} are kept, run the same '
            'command again to finish')
        raise ProposalRunInterrupted(
            f'interrupted; the results in {work_dir} are kept') from None
    finally:
        if writer is not None:
            writer.close(quiet=True)
        lock.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    summary.wall_s = time.perf_counter() - t_start
    log(format_summary(summary))
    return summary


def _stopped(summary: RunSummary, stop: BaseException, path: str,
             log: Callable[[str], None], t_start: float) -> None:
    """Report a run stopped inside the search loop and raise: Ctrl-C as
    :class:`KeyboardInterrupt`, a stop signal as
    :class:`ProposalRunInterrupted`."""
    summary.wall_s = time.perf_counter() - t_start
    log(format_summary(summary))
    log(f'interrupted: {summary.processed} images of this run are saved in '
        f'{path}; run the same command again to resume')
    if isinstance(stop, KeyboardInterrupt):
        raise KeyboardInterrupt
    raise ProposalRunInterrupted(
        f'interrupted: {summary.processed} images of this run are saved in '
        f'{path}', summary)


@dataclass
class _Plan:
    """A shard's work: the tasks, the ``redo`` numbers of recomputed
    images, the changed and the vanished (recorded but now missing) file
    names."""
    tasks: List[Task] = field(default_factory=list)
    redo: Dict[str, int] = field(default_factory=dict)
    changed: List[str] = field(default_factory=list)
    vanished: List[str] = field(default_factory=list)


def _plan(mine: List[Tuple[int, ImageEntry]], img_dir: str,
          done: Dict[str, Dict[str, Any]], retry_failed: bool) -> _Plan:
    """Tasks of a (resumed) shard: images without a record, failures if
    ``retry_failed``, and images whose file changed (size or mtime) since
    their record was written."""
    plan = _Plan()
    tasks, redo = plan.tasks, plan.redo
    changed, vanished = plan.changed, plan.vanished
    for k, e in mine:
        path = osp.join(img_dir, e.file_name)
        rec = done.get(e.file_name)
        if rec is not None:
            again = 'error' in rec and retry_failed
            if 'src' in rec:  # work dirs of older versions have no stamp
                now = source_stamp(path)
                if now is None and rec['src'] is not None:
                    vanished.append(e.file_name)
                elif now != rec['src']:
                    changed.append(e.file_name)
                    again = True
            if not again:
                continue
            redo[e.file_name] = int(rec.get('redo', 0)) + 1
        tasks.append((k, e.id, e.file_name, path))
    return plan


class _Tally:
    """Counts of the records written by one run, and its progress bar."""

    def __init__(self, bar):
        self.bar = bar
        self.n_props: List[int] = []
        self.secs: List[float] = []
        self.stages: Counter = Counter()
        self.failed: List[Tuple[str, str]] = []
        self.bounded: List[str] = []

    def add(self, rec: Dict[str, Any]) -> None:
        if rec.get('search_hw'):
            self.bounded.append(rec['file_name'])
        if 'error' in rec:
            self.failed.append((rec['file_name'], rec['error']))
        else:
            self.n_props.append(len(rec['boxes']))
            self.secs.append(rec['sec'])
            self.stages[rec['stage']] += 1
        if self.bar is None:
            return
        self.bar.update(1)
        n = len(self.n_props) + len(self.failed)
        if n in (1, 10) or n % 50 == 0:
            mean = sum(self.n_props) / max(1, len(self.n_props))
            self.bar.set_postfix(props=f'{mean:.1f}',
                                 failed=len(self.failed), refresh=False)

    def fill(self, s: RunSummary) -> None:
        props = self.n_props
        s.processed = len(props) + len(self.failed)
        s.failed, s.failures = len(self.failed), self.failed
        s.proposals_per_image = sum(props) / len(props) if props else 0.0
        s.min_proposals = min(props) if props else 0
        s.max_proposals = max(props) if props else 0
        s.zero_proposal_images = sum(1 for p in props if p == 0)
        s.stages = dict(sorted(self.stages.items()))
        s.bounded, s.bounded_files = len(self.bounded), self.bounded
        s.search_s_per_image = (sum(self.secs) / len(self.secs)
                                if self.secs else 0.0)


def _progress_bar(opts: RunOptions, total: int, initial: int):
    if not opts.progress or total == initial:
        return None
    from tqdm import tqdm
    i, n = opts.shard
    return tqdm(total=total, initial=initial, unit='img',
                desc=f'selective search [{i}/{n}]', smoothing=0.05,
                mininterval=0.5 if sys.stderr.isatty() else 30.0,
                dynamic_ncols=True)


def _write(writer: ShardWriter, rec: Dict[str, Any]) -> None:
    try:
        writer.write(rec)
    except OSError as e:
        raise ProposalStateError(
            f'cannot write {writer.path} ({e.strerror or e}); free space '
            '(or fix the folder) and run the same command again to '
            'resume') from None


def _run_tasks(plan: _Plan, mine: List[Tuple[int, ImageEntry]],
               cfg: ProposalConfig, writer: ShardWriter, opts: RunOptions,
               t_start: float
               ) -> Tuple[RunSummary, Optional[BaseException]]:
    """Process the plan's tasks, append their records; the summary of this
    run and what stopped it (Ctrl-C or a stop signal; ``None`` if nothing
    did). The images in flight at a stop are not recorded."""
    i, n = opts.shard
    tasks = plan.tasks
    already = len(mine) - len(tasks)
    workers = min(opts.worker_count(), max(1, len(tasks)))
    opts.log(f'shard {i}/{n}: {len(mine)} images, {already} already done, '
             f'{len(tasks)} to process with {workers} worker(s)')
    tally = _Tally(_progress_bar(opts, len(mine), already))
    stop = None
    t_work = time.perf_counter()
    results = iter_results(tasks, cfg, workers,
                           opts.worker_fn or process_image,
                           opts.start_method)
    first_result_s = None
    try:
        for rec in results:
            if first_result_s is None:
                first_result_s = time.perf_counter() - t_work
            if rec['file_name'] in plan.redo:
                rec['redo'] = plan.redo[rec['file_name']]
            _write(writer, rec)
            tally.add(rec)
    except (KeyboardInterrupt, process_pool.Stopped) as e:
        stop = e
    finally:
        results.close()  # stops the worker processes
        if tally.bar is not None:
            tally.bar.close()
    work_s = time.perf_counter() - t_work
    s = RunSummary(shard=f'{i}/{n}', images_in_shard=len(mine),
                   already_done=already, workers=workers, work_s=work_s,
                   first_result_s=first_result_s, setup_s=t_work - t_start,
                   interrupted=stop is not None,
                   changed=len(plan.changed), changed_files=plan.changed,
                   vanished=len(plan.vanished))
    tally.fill(s)
    s.images_per_s = s.processed / work_s if work_s > 0 else 0.0
    _log_changes(plan, opts.log)
    return s, stop


def _log_changes(plan: _Plan, log: Callable[[str], None]) -> None:
    if plan.changed:
        log(f'{len(plan.changed)} images changed on disk since their '
            'results were computed and were processed again, e.g. '
            f'{plan.changed[:3]}')
    if plan.vanished:
        log(f'warning: {len(plan.vanished)} images with results are missing '
            f'now (kept their results), e.g. {plan.vanished[:3]}')
