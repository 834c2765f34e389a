"""Dataset-scale, parallel, resumable selective search.

:func:`run_proposals` processes one shard of an image list with a pool of
worker processes (OpenCV limited to one thread each), appends one JSON line
per finished image to the shard's file in the work dir, skips images that any
shard file already holds, and (for an unsharded run) merges the work dir into
the final COCO-style JSON.
"""
import multiprocessing as mp
import os
import os.path as osp
import signal
import sys
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

from .config import ProposalConfig
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

Task = Tuple[int, int, str, str]  # (index, image id, file_name, path)

_WORKER_CFG: Optional[ProposalConfig] = None
_WORKER_FN: Optional[Callable[[Task, ProposalConfig], Dict[str, Any]]] = None
WorkerFn = Callable[[Task, ProposalConfig], Dict[str, Any]]


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


def _exit_when_dead(pid: int, poll_s: float = 1.0) -> None:
    """Block until process ``pid`` has exited, then ``os._exit`` this one."""
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: wakes up at its exit
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        import select
        select.select([fd], [], [])
    else:  # pragma: no cover - other platforms / old kernels
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(poll_s)
    os._exit(1)


def watch_main_process(pid: int) -> None:
    """Make this (worker) process exit as soon as process ``pid`` dies.

    Workers are children of the fork server, not of the main process, so
    ``PR_SET_PDEATHSIG`` alone does not fire when the main process is
    killed; and the fork server lives as long as any worker (each holds its
    "alive" pipe). Without this a ``kill -9`` of the main process leaves the
    fork server and idle workers behind for good.
    """
    import threading
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # already gone
        os._exit(1)
    except PermissionError:  # pragma: no cover
        pass
    threading.Thread(target=_exit_when_dead, args=(pid,), daemon=True,
                     name='watch-main-process').start()


def _init_worker(cfg: ProposalConfig, fn: WorkerFn,
                 main_pid: Optional[int] = None) -> None:
    """Pool initializer: one OpenCV/torch thread per worker, default signal
    handling (the parent handles Ctrl-C), and death with the main process
    (``main_pid``) or the fork server."""
    global _WORKER_CFG, _WORKER_FN
    _WORKER_CFG, _WORKER_FN = cfg, fn
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith('linux'):
        try:  # PR_SET_PDEATHSIG: die with the parent (the fork server)
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover
            pass
    if main_pid is not None:
        watch_main_process(main_pid)
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


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Terminated(BaseException):
    """SIGTERM (or a worker stopped by a stop signal): stop the run, record
    nothing for the images in flight. A ``BaseException`` so that no
    per-image ``except Exception`` turns it into a failure."""


def _raise_terminated(signum, frame):
    raise _Terminated(f'signal {signum}')


def _check_stopped(procs: Iterable[Any]) -> None:
    """Raise :class:`_Terminated` if the workers were ended by a stop signal
    (``kill -TERM`` of the process group, a scheduler's preemption): the
    images in flight did not fail, the run was stopped.

    A crash (exit code, SIGSEGV, SIGKILL by the OOM killer) of any worker
    wins: the pool then SIGTERMs the others itself.
    """
    stopped = crashed = False
    for p in procs:
        p.join(timeout=1)
        code = p.exitcode
        if code is None or code == 0:
            continue
        if code < 0 and -code in STOP_SIGNALS:
            stopped = True
        else:
            crashed = True
    if stopped and not crashed:
        raise _Terminated('workers were stopped by a signal')


def _pool_procs(ex: ProcessPoolExecutor) -> List[Any]:
    return list((getattr(ex, '_processes', None) or {}).values())


def _stop_executor(ex: ProcessPoolExecutor, hard: bool) -> None:
    """Shut a pool down; ``hard`` terminates busy workers. Either way the
    workers have exited on return (they share the shard file's lock)."""
    procs = _pool_procs(ex)
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
        inputs: Input files of the run (the ``--ann-file`` image list):
            an ``out`` naming one of them, or one of the images, is refused
            whatever ``overwrite`` says.
    """
    tasks = deque(tasks)
    if workers <= 1:
        while tasks:
            yield worker_fn(tasks.popleft(), cfg)
        return
    ctx = _mp_context(start_method)
    initargs = (cfg, worker_fn, os.getpid())
    suspects: List[Task] = []
    while tasks or suspects:
        # Tasks that were in flight when a worker died: run each alone.
        while suspects:
            t = suspects.pop()
            ex = ProcessPoolExecutor(1, mp_context=ctx,
                                     initializer=_init_worker,
                                     initargs=initargs)
            hard = True
            procs: List[Any] = []
            try:
                try:
                    fut = ex.submit(_worker_task, t)
                    procs = _pool_procs(ex)
                    rec = fut.result()
                except BrokenProcessPool:
                    _check_stopped(procs)
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
                                 initargs=initargs)
        inflight: Dict[Any, Task] = {}
        procs = {}
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
                    procs.update((p.pid, p) for p in _pool_procs(ex))
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
            _check_stopped(procs.values())
            suspects.extend(inflight.values())
            inflight.clear()
        finally:
            _stop_executor(ex, hard)


def run_proposals(entries: List[ImageEntry], img_dir: str,
                  cfg: ProposalConfig, work_dir: str,
                  out: Optional[str] = None, workers: Optional[int] = None,
                  shard: Tuple[int, int] = (0, 1),
                  retry_failed: bool = False, overwrite: bool = False,
                  progress: bool = True, source: Optional[Dict] = None,
                  log: Callable[[str], None] = print,
                  worker_fn: WorkerFn = process_image,
                  start_method: Optional[str] = None,
                  inputs: Sequence[Optional[str]] = ()) -> Dict[str, Any]:
    """Compute proposals for one shard of ``entries``; resumable.

    Args:
        entries: Ordered image list of the whole run (all shards).
        img_dir: Folder that ``file_name`` is relative to.
        cfg: Proposal settings (must match the work dir's on resume).
        work_dir: Folder of the run's state (see :mod:`.store`).
        out: Final JSON path. Written when the run is unsharded (``n == 1``);
            sharded runs are merged with :func:`merge_work_dir` afterwards.
            Checked up front either way: it must be writable, and an
            existing file must have been written from this work dir (unless
            ``overwrite``).
        workers: Worker processes; ``None`` = all cores. 1 runs in-process.
        shard: ``(i, n)``: process images ``k`` with ``k % n == i``.
        retry_failed: Process images recorded as failures again.
        overwrite: Empty an existing work dir first (refused while another
            run uses it, or if it holds files that are not proposal state)
            and replace an existing ``out`` written by another run.
        progress: Show a tqdm progress bar (rate and ETA).
        source: Description of the input stored in the work dir's meta.
        log: Print function for messages and the summary.
        worker_fn: Per-image function (see :func:`iter_results`).
        start_method: multiprocessing start method (default: forkserver).
        inputs: Input files of the run (the ``--ann-file`` image list):
            an ``out`` naming one of them, or one of the images, is refused
            whatever ``overwrite`` says.

    Returns:
        dict: Summary (counts, proposals per image, timings, merge result).
    """
    t_start = time.perf_counter()
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else (os.cpu_count() or 1)
    workers = max(1, int(workers))
    i, n = shard
    # Everything that can be refused is checked before any work is done
    # (also by each shard of a sharded run: the merge writes ``out``).
    if out is not None:
        check_out_not_input(out, inputs, img_dir, entries)
        check_writable(out, '--out')
        check_out_replaceable(work_dir, out, overwrite)
    check_writable(work_dir, '--work-dir', is_dir=True)
    lock = WorkDirLock(work_dir, exclusive=overwrite)
    writer = None
    # SIGTERM raises _Terminated (a BaseException) from here on: the image in
    # flight is not recorded and temporary files are removed on the way out.
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        old_term = None
    try:
        if overwrite:
            clear_work_dir(work_dir)
            lock.share()
        prepare_work_dir(work_dir, entries, cfg.to_dict(), source or {})
        mine = shard_entries(entries, shard)
        # Readers skip a torn last line, so reading before the writer trims
        # it gives the same set.
        done = finished_records(work_dir)
        writer = ShardWriter(shard_path(work_dir, shard))
        if writer.dropped_bytes:
            log(f'dropped a truncated last record ({writer.dropped_bytes} '
                f'bytes) from {writer.path}; that image is processed again')
        tasks, redo, changed, vanished = _plan(mine, img_dir, done,
                                               retry_failed)
        summary = _run_tasks(tasks, redo, mine, shard, cfg, workers, writer,
                             progress, log, worker_fn, start_method, t_start)
        summary.update(changed=len(changed), changed_files=changed,
                       vanished=len(vanished))
        if changed:
            log(f'{len(changed)} images changed on disk since their results '
                f'were computed and were processed again, e.g. {changed[:3]}')
        if vanished:
            log(f'warning: {len(vanished)} images with results are missing '
                f'now (kept their results), e.g. {vanished[:3]}')
        writer.close()
        if summary['interrupted']:
            summary['wall_s'] = time.perf_counter() - t_start
            log(format_summary(summary))
            log(f'interrupted: {summary["processed"]} images of this run are '
                f'saved in {writer.path}; run the same command again to '
                'resume')
            if summary.pop('_interrupt') == 'int':
                raise KeyboardInterrupt
            raise SystemExit(143)
        summary.pop('_interrupt')
        if out is not None and n == 1:
            summary['merge'] = merge_work_dir(work_dir, out, log=log,
                                              overwrite=overwrite)
    except _Terminated:  # before or after the search loop (e.g. merging)
        log(f'interrupted; the results in {work_dir} are kept, run the same '
            'command again to finish')
        raise SystemExit(143) from None
    finally:
        if writer is not None:
            writer.close(quiet=True)
        lock.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    summary['wall_s'] = time.perf_counter() - t_start
    log(format_summary(summary))
    return summary


def _plan(mine: List[Tuple[int, ImageEntry]], img_dir: str,
          done: Dict[str, Dict[str, Any]], retry_failed: bool
          ) -> Tuple[List[Task], Dict[str, int], List[str], List[str]]:
    """Tasks of a (resumed) shard: images without a record, failures if
    ``retry_failed``, and images whose file changed (size or mtime) since
    their record was written. Also ``redo`` numbers of recomputed images, the
    changed and the vanished (recorded but now missing) file names."""
    tasks: List[Task] = []
    redo: Dict[str, int] = {}
    changed: List[str] = []
    vanished: List[str] = []
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
    return tasks, redo, changed, vanished


def _run_tasks(tasks: List[Task], redo: Dict[str, int],
               mine: List[Tuple[int, ImageEntry]], shard: Tuple[int, int],
               cfg: ProposalConfig, workers: int, writer: ShardWriter,
               progress: bool, log: Callable[[str], None],
               worker_fn: WorkerFn, start_method: Optional[str],
               t_start: float) -> Dict[str, Any]:
    """Process ``tasks``, append their records; the summary of this run.

    SIGTERM / Ctrl-C stop it: ``summary['_interrupt']`` is then ``'term'``
    or ``'int'`` (else ``None``); the images in flight are not recorded.
    """
    i, n = shard
    already = len(mine) - len(tasks)
    workers = min(workers, max(1, len(tasks)))
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
    bounded: List[str] = []
    interrupted = None
    t_work = time.perf_counter()
    results = iter_results(tasks, cfg, workers, worker_fn, start_method)
    first_result_s = None
    try:
        for rec in results:
            if first_result_s is None:
                first_result_s = time.perf_counter() - t_work
            if rec['file_name'] in redo:
                rec['redo'] = redo[rec['file_name']]
            try:
                writer.write(rec)
            except OSError as e:
                raise ProposalStateError(
                    f'cannot write {writer.path} ({e.strerror or e}); free '
                    'space (or fix the folder) and run the same command '
                    'again to resume') from None
            if rec.get('search_hw'):
                bounded.append(rec['file_name'])
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
        if bar is not None:
            bar.close()
    work_s = time.perf_counter() - t_work
    processed = len(n_props) + len(failed)
    return dict(
        shard=f'{i}/{n}', images_in_shard=len(mine), already_done=already,
        processed=processed, failed=len(failed),
        failures=failed, workers=workers,
        proposals_per_image=(sum(n_props) / len(n_props)) if n_props else 0.0,
        min_proposals=min(n_props) if n_props else 0,
        max_proposals=max(n_props) if n_props else 0,
        zero_proposal_images=sum(1 for p in n_props if p == 0),
        stages=dict(sorted(stages.items())),
        bounded=len(bounded), bounded_files=bounded,
        search_s_per_image=(sum(secs) / len(secs)) if secs else 0.0,
        work_s=work_s, first_result_s=first_result_s,
        setup_s=t_work - t_start,
        images_per_s=processed / work_s if work_s > 0 else 0.0,
        interrupted=interrupted is not None, merge=None,
        _interrupt=None if interrupted is None else
        'int' if isinstance(interrupted, KeyboardInterrupt) else 'term')


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
    if s.get('bounded'):
        lines.append(
            f'shrunk for cost      {s["bounded"]} images (--max-pixels / '
            '--max-search-aspect), e.g. '
            + ', '.join(s['bounded_files'][:5]))
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
