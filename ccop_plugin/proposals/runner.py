"""Dataset-scale, parallel, resumable selective search.

:func:`run_proposals` processes one shard of an image list with a pool of
worker processes (OpenCV limited to one thread each), appends one JSON line
per finished image to the shard's file in the work dir, skips images that any
shard file already holds, and (for an unsharded run) merges the work dir into
the final COCO-style JSON.
"""
import os
import os.path as osp
import shutil
import signal
import sys
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import multiprocessing as mp

from .config import ProposalConfig
from .search import propose, read_image
from .sources import ImageEntry, shard_entries
from .store import (ShardWriter, boxes_to_record, finished_names,
                    merge_work_dir, prepare_work_dir, shard_path)

Task = Tuple[int, int, str, str]  # (index, image id, file_name, path)

_WORKER_CFG: Optional[ProposalConfig] = None
_WORKER_FN: Optional[Callable[[Task, ProposalConfig], Dict[str, Any]]] = None
WorkerFn = Callable[[Task, ProposalConfig], Dict[str, Any]]


def process_image(task: Task, cfg: ProposalConfig) -> Dict[str, Any]:
    """Proposals of one image as a shard-file record (never raises)."""
    k, img_id, file_name, path = task
    rec: Dict[str, Any] = {'k': k, 'id': img_id, 'file_name': file_name}
    try:
        img = read_image(path)
        res = propose(img, cfg, file_name)
    except MemoryError:
        rec['error'] = 'out of memory (try --max-size)'
        return rec
    except ValueError as e:  # unreadable / corrupt image (message names it)
        rec['error'] = str(e)
        return rec
    except Exception as e:  # noqa: BLE001 - any per-image failure is recorded
        rec['error'] = f'{type(e).__name__}: {e}'
        return rec
    h, w = img.shape[:2]
    rec.update(width=int(w), height=int(h),
               boxes=boxes_to_record(res['boxes']), stage=int(res['stage']),
               n_cand=int(res['num_candidates']),
               sec=round(float(res['seconds']), 3))
    return rec


def _init_worker(cfg: ProposalConfig, fn: WorkerFn) -> None:
    """Pool initializer: one OpenCV/torch thread per worker, default signal
    handling (the parent handles Ctrl-C), and death with the parent."""
    global _WORKER_CFG, _WORKER_FN
    _WORKER_CFG, _WORKER_FN = cfg, fn
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith('linux'):
        try:  # PR_SET_PDEATHSIG: no orphaned workers after `kill -9 parent`
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover
            pass
    import cv2
    cv2.setNumThreads(1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _worker_task(task: Task) -> Dict[str, Any]:
    assert _WORKER_CFG is not None and _WORKER_FN is not None
    return _WORKER_FN(task, _WORKER_CFG)


def _mp_context(start_method: Optional[str] = None):
    """Process context for the workers: ``forkserver`` where available.

    Plain ``fork`` is not safe here: once OpenCV (or torch) has started its
    thread pool in the parent -- e.g. a caller ran selective search before --
    a forked child deadlocks in ``cv2.setNumThreads``. The fork server is a
    fresh interpreter that imports this module once; workers fork from it
    quickly and inherit no threads, locks or open files of the parent.
    """
    if start_method is None:
        start_method = ('forkserver' if 'forkserver' in
                        mp.get_all_start_methods() else 'spawn')
    ctx = mp.get_context(start_method)
    if start_method == 'forkserver':
        ctx.set_forkserver_preload([__name__])
    return ctx


def prestart_workers(start_method: Optional[str] = None) -> None:
    """Start the fork server in the background (it imports this package,
    a few seconds) so that it overlaps with the caller's own start-up."""
    ctx = _mp_context(start_method)
    if ctx.get_start_method() == 'forkserver':
        from multiprocessing import forkserver
        forkserver.ensure_running()


def _stop_executor(ex: ProcessPoolExecutor, hard: bool) -> None:
    """Shut a pool down; ``hard`` terminates busy workers. Either way the
    workers have exited on return (they share the shard file's lock)."""
    procs = list((getattr(ex, '_processes', None) or {}).values())
    if hard:
        for p in procs:
            if p.is_alive():
                p.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
    else:
        ex.shutdown(wait=True)
    for p in procs:
        p.join(timeout=10)


def iter_results(tasks: Iterable[Task], cfg: ProposalConfig, workers: int,
                 worker_fn: WorkerFn = process_image,
                 start_method: Optional[str] = None
                 ) -> Iterable[Dict[str, Any]]:
    """Records of ``tasks`` in completion order, computed by ``workers``
    processes (``workers == 1``: in this process).

    If a worker dies (segfault, OOM kill) the images it may have held are
    retried one at a time in a fresh process; the one that kills its worker
    again is reported as a failure instead of stopping the run.

    Args:
        tasks: ``(index, image id, file_name, path)`` tuples.
        cfg: Proposal settings.
        workers: Number of worker processes.
        worker_fn: Picklable ``fn(task, cfg) -> record`` (tests inject
            failures through it).
        start_method: multiprocessing start method (default: forkserver).
    """
    tasks = deque(tasks)
    if workers <= 1:
        while tasks:
            yield worker_fn(tasks.popleft(), cfg)
        return
    ctx = _mp_context(start_method)
    suspects: List[Task] = []
    while tasks or suspects:
        # Tasks that were in flight when a worker died: run each alone.
        while suspects:
            t = suspects.pop()
            ex = ProcessPoolExecutor(1, mp_context=ctx,
                                     initializer=_init_worker,
                                     initargs=(cfg, worker_fn))
            hard = True
            try:
                try:
                    rec = ex.submit(_worker_task, t).result()
                except BrokenProcessPool:
                    rec = {'k': t[0], 'id': t[1], 'file_name': t[2],
                           'error': 'worker process died on this image '
                                    '(crash or killed for memory; try '
                                    '--max-size)'}
                hard = False
            finally:
                _stop_executor(ex, hard)
            yield rec
        if not tasks:
            break
        ex = ProcessPoolExecutor(workers, mp_context=ctx,
                                 initializer=_init_worker,
                                 initargs=(cfg, worker_fn))
        inflight: Dict[Any, Task] = {}
        hard = True
        try:
            while tasks or inflight:
                while tasks and len(inflight) < 2 * workers:
                    t = tasks.popleft()
                    try:
                        inflight[ex.submit(_worker_task, t)] = t
                    except BrokenProcessPool:
                        tasks.appendleft(t)
                        raise
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    t = inflight.pop(fut)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        suspects.append(t)
                        broken = True
                        continue
                    yield rec
                if broken:
                    raise BrokenProcessPool
            hard = False
        except BrokenProcessPool:
            suspects.extend(inflight.values())
            inflight.clear()
        finally:
            _stop_executor(ex, hard)


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated(f'signal {signum}')


def run_proposals(entries: List[ImageEntry], img_dir: str,
                  cfg: ProposalConfig, work_dir: str,
                  out: Optional[str] = None, workers: Optional[int] = None,
                  shard: Tuple[int, int] = (0, 1),
                  retry_failed: bool = False, overwrite: bool = False,
                  progress: bool = True, source: Optional[Dict] = None,
                  log: Callable[[str], None] = print,
                  worker_fn: WorkerFn = process_image,
                  start_method: Optional[str] = None) -> Dict[str, Any]:
    """Compute proposals for one shard of ``entries``; resumable.

    Args:
        entries: Ordered image list of the whole run (all shards).
        img_dir: Folder that ``file_name`` is relative to.
        cfg: Proposal settings (must match the work dir's on resume).
        work_dir: Folder of the run's state (see :mod:`.store`).
        out: Final JSON path. Written when the run is unsharded (``n == 1``);
            sharded runs are merged with :func:`merge_work_dir` afterwards.
        workers: Worker processes; ``None`` = all cores. 1 runs in-process.
        shard: ``(i, n)``: process images ``k`` with ``k % n == i``.
        retry_failed: Process images recorded as failures again.
        overwrite: Delete an existing work dir first.
        progress: Show a tqdm progress bar (rate and ETA).
        source: Description of the input stored in the work dir's meta.
        log: Print function for messages and the summary.
        worker_fn: Per-image function (see :func:`iter_results`).
        start_method: multiprocessing start method (default: forkserver).

    Returns:
        dict: Summary (counts, proposals per image, timings, merge result).
    """
    t_start = time.perf_counter()
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else (os.cpu_count() or 1)
    workers = max(1, int(workers))
    if overwrite and osp.isdir(work_dir):
        shutil.rmtree(work_dir)
    prepare_work_dir(work_dir, entries, cfg.to_dict(), source or {})
    mine = shard_entries(entries, shard)
    # Readers skip a torn last line, so reading before the writer trims it
    # gives the same set.
    done = finished_names(work_dir, include_failures=not retry_failed)
    writer = ShardWriter(shard_path(work_dir, shard))
    if writer.dropped_bytes:
        log(f'dropped a truncated last record ({writer.dropped_bytes} bytes) '
            f'from {writer.path}; that image is processed again')
    tasks = [(k, e.id, e.file_name, osp.join(img_dir, e.file_name))
             for k, e in mine if e.file_name not in done]
    already = len(mine) - len(tasks)
    workers = min(workers, max(1, len(tasks)))
    i, n = shard
    log(f'shard {i}/{n}: {len(mine)} images, {already} already done, '
        f'{len(tasks)} to process with {workers} worker(s)')

    bar = None
    if progress and tasks:
        from tqdm import tqdm
        tty = sys.stderr.isatty()
        bar = tqdm(total=len(mine), initial=already, unit='img',
                   desc=f'selective search [{i}/{n}]', smoothing=0.05,
                   mininterval=0.5 if tty else 30.0, dynamic_ncols=True)

    n_props: List[int] = []
    secs: List[float] = []
    stages: Counter = Counter()
    failed: List[Tuple[str, str]] = []
    interrupted = None
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        old_term = None
    t_work = time.perf_counter()
    results = iter_results(tasks, cfg, workers, worker_fn, start_method)
    first_result_s = None
    try:
        for rec in results:
            if first_result_s is None:
                first_result_s = time.perf_counter() - t_work
            writer.write(rec)
            if 'error' in rec:
                failed.append((rec['file_name'], rec['error']))
            else:
                n_props.append(len(rec['boxes']))
                secs.append(rec['sec'])
                stages[rec['stage']] += 1
            if bar is not None:
                bar.update(1)
                if len(n_props) + len(failed) in (1, 10) or \
                        (len(n_props) + len(failed)) % 50 == 0:
                    bar.set_postfix(
                        props=f'{sum(n_props) / max(1, len(n_props)):.1f}',
                        failed=len(failed), refresh=False)
    except (KeyboardInterrupt, _Terminated) as e:
        interrupted = e
    finally:
        results.close()  # stops the worker processes
        writer.close()
        if bar is not None:
            bar.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    work_s = time.perf_counter() - t_work

    summary: Dict[str, Any] = dict(
        shard=f'{i}/{n}', images_in_shard=len(mine), already_done=already,
        processed=len(n_props) + len(failed), failed=len(failed),
        failures=failed, workers=workers,
        proposals_per_image=(sum(n_props) / len(n_props)) if n_props else 0.0,
        min_proposals=min(n_props) if n_props else 0,
        max_proposals=max(n_props) if n_props else 0,
        zero_proposal_images=sum(1 for p in n_props if p == 0),
        stages=dict(sorted(stages.items())),
        search_s_per_image=(sum(secs) / len(secs)) if secs else 0.0,
        work_s=work_s, first_result_s=first_result_s,
        setup_s=t_work - t_start,
        images_per_s=(len(n_props) + len(failed)) / work_s if work_s > 0
        else 0.0,
        interrupted=interrupted is not None, merge=None)
    if interrupted is not None:
        summary['wall_s'] = time.perf_counter() - t_start
        log(format_summary(summary))
        log(f'interrupted: {summary["processed"]} images of this run are '
            f'saved in {writer.path}; run the same command again to resume')
        if isinstance(interrupted, KeyboardInterrupt):
            raise interrupted
        raise SystemExit(143)
    if out is not None and n == 1:
        summary['merge'] = merge_work_dir(work_dir, out, log=log)
    summary['wall_s'] = time.perf_counter() - t_start
    log(format_summary(summary))
    return summary


def format_summary(s: Dict[str, Any]) -> str:
    """Human-readable run summary."""
    lines = [
        f'--- selective search summary (shard {s["shard"]}) ---',
        f'images in shard      {s["images_in_shard"]} '
        f'({s["already_done"]} done before, {s["processed"]} now)',
        f'failed (unreadable)  {s["failed"]}',
        f'proposals / image    {s["proposals_per_image"]:.1f} '
        f'(min {s["min_proposals"]}, max {s["max_proposals"]}, '
        f'{s["zero_proposal_images"]} images with none)',
    ]
    if s['stages'] and set(s['stages']) != {0}:
        lines.append(f'filter stage counts  {s["stages"]} '
                     '(0 main, 1-2 relaxed, 3 nothing left / whole image)')
    lines += [
        f'time                 {s["work_s"]:.1f} s with {s["workers"]} '
        f'worker(s): {s["images_per_s"]:.2f} img/s, '
        f'{s["search_s_per_image"]:.2f} s/img per worker',
    ]
    for name, err in s['failures'][:10]:
        lines.append(f'  failed: {name}: {err}')
    if len(s['failures']) > 10:
        lines.append(f'  ... and {len(s["failures"]) - 10} more')
    m = s.get('merge')
    if m:
        lines.append(f'wrote {m["out"]}: {m["images"]} images, '
                     f'{m["annotations"]} proposals, {m["size_mb"]:.1f} MiB')
        if m['failures_report']:
            lines.append(f'failure report       {m["failures_report"]}')
    return '\n'.join(lines)
