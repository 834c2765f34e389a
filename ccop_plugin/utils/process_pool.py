"""A crash-isolating process pool for long per-item jobs.

:func:`isolated_map` runs ``fn(task, arg)`` for every task in worker
processes and yields the results in completion order. It differs from a
plain :class:`~concurrent.futures.ProcessPoolExecutor` in three ways:

* a worker that dies (segfault, OOM kill) does not end the run: the tasks
  it may have held are retried one at a time in a fresh process, and the one
  that kills its worker again becomes ``on_crash(task)`` instead;
* a stop signal (SIGTERM to the process group, a scheduler's preemption)
  that ends the workers stops the run with :class:`Stopped`, it is not
  mistaken for a crash;
* workers die with the main process, even after ``kill -9`` of it.

Nothing here knows what a task is; the caller supplies the function, its
shared argument, the crash result and an optional per-worker ``setup``.
"""
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_FN: Optional[Callable[[Any, Any], Any]] = None
_ARG: Any = None


class Stopped(BaseException):
    """The run was stopped by a signal (SIGTERM to this process, or the
    workers ended by a stop signal). A ``BaseException`` so that no
    per-item ``except Exception`` turns it into a failure."""


def raise_stopped(signum, frame):
    """SIGTERM handler: raise :class:`Stopped` in the main thread."""
    raise Stopped(f'signal {signum}')


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


def _init_worker(fn: Callable[[Any, Any], Any], arg: Any,
                 setup: Optional[Callable[[], None]],
                 main_pid: Optional[int]) -> None:
    """Pool initializer: default signal handling (the parent handles
    Ctrl-C), death with the main process or the fork server, then the
    caller's ``setup``."""
    global _FN, _ARG
    _FN, _ARG = fn, arg
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
    if setup is not None:
        setup()


def _call(task: Any) -> Any:
    assert _FN is not None
    return _FN(task, _ARG)


def mp_context(start_method: Optional[str] = None,
               preload: Sequence[str] = ()):
    """Process context for the workers: ``forkserver`` where available.

    Plain ``fork`` is not safe for workers that use OpenCV or torch: once
    their thread pools run in the parent, a forked child can deadlock. The
    fork server is a fresh interpreter that imports ``preload`` once;
    workers fork from it quickly and inherit no threads, locks or open files
    of the parent.
    """
    if start_method is None:
        start_method = ('forkserver' if 'forkserver' in
                        mp.get_all_start_methods() else 'spawn')
    ctx = mp.get_context(start_method)
    if start_method == 'forkserver' and preload:
        ctx.set_forkserver_preload(list(preload))
    return ctx


def prestart(start_method: Optional[str] = None,
             preload: Sequence[str] = ()) -> None:
    """Start the fork server in the background (it imports ``preload``)
    so that it overlaps with the caller's own start-up."""
    ctx = mp_context(start_method, preload)
    if ctx.get_start_method() == 'forkserver':
        from multiprocessing import forkserver
        forkserver.ensure_running()


class _RecordingContext:
    """A multiprocessing context that keeps the processes it starts.

    The executor has no public way to list its workers, and their exit
    codes are what tells a stop signal from a crash; it does take the
    context it starts them with (``mp_context=``), so this one hands out
    the real context's processes and records each. Everything else is the
    real context's.
    """

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self.processes: List[Any] = []

    def Process(self, *args, **kwargs):  # the name of the context API
        proc = self._ctx.Process(*args, **kwargs)
        self.processes.append(proc)
        return proc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _exit_code(p: Any, timeout: float = 1.) -> Optional[int]:
    """``p``'s exit code, None while it runs. ``exitcode`` reads None for
    a dead worker that the executor's own thread is reaping at that moment
    (its ``waitpid`` wins, ours fails), so a None is read again until
    ``timeout``: a crash is then never taken for a live worker."""
    deadline = time.monotonic() + timeout
    p.join(timeout=timeout)
    code = p.exitcode
    while code is None and time.monotonic() < deadline:
        time.sleep(0.02)
        code = p.exitcode
    return code


def check_stopped(procs: Iterable[Any]) -> None:
    """Raise :class:`Stopped` if the workers were ended by a stop signal:
    the tasks in flight did not fail, the run was stopped.

    A crash (exit code, SIGSEGV, SIGKILL by the OOM killer) of any worker
    wins: the pool then SIGTERMs the others itself.
    """
    stopped = crashed = False
    for p in procs:
        code = _exit_code(p)
        if code is None or code == 0:
            continue
        if code < 0 and -code in STOP_SIGNALS:
            stopped = True
        else:
            crashed = True
    if stopped and not crashed:
        raise Stopped('workers were stopped by a signal')


def _shutdown(ex: ProcessPoolExecutor, procs: List[Any],
              hard: bool) -> None:
    """Shut a pool down; ``hard`` terminates its busy workers ``procs``.
    Either way the workers have exited on return (they may share the
    caller's locks)."""
    if hard:
        for p in procs:
            if p.is_alive():
                p.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
    else:
        ex.shutdown(wait=True)
    for p in procs:
        p.join(timeout=10)


class _Pool:
    """One :func:`isolated_map` call's settings."""

    def __init__(self, fn, arg, on_crash, setup, ctx):
        self.on_crash = on_crash
        self.ctx = ctx
        self.initargs = (fn, arg, setup, os.getpid())

    def executor(self, workers: int) -> Tuple[ProcessPoolExecutor,
                                              List[Any]]:
        """A pool and the (growing) list of the worker processes it
        starts."""
        ctx = _RecordingContext(self.ctx)
        ex = ProcessPoolExecutor(workers, mp_context=ctx,
                                 initializer=_init_worker,
                                 initargs=self.initargs)
        return ex, ctx.processes

    def alone(self, task: Any) -> Any:
        """``task`` in a fresh one-worker pool; a crash gives
        ``on_crash(task)``."""
        ex, procs = self.executor(1)
        hard = True
        try:
            try:
                result = ex.submit(_call, task).result()
            except BrokenProcessPool:
                check_stopped(procs)
                result = self.on_crash(task)
            hard = False
        finally:
            _shutdown(ex, procs, hard)
        return result

    def batch(self, tasks: Deque[Any], workers: int,
              suspects: List[Any]) -> Iterator[Any]:
        """Results of ``tasks`` (consumed) until the pool breaks; then the
        tasks that were in flight are appended to ``suspects``."""
        ex, procs = self.executor(workers)
        inflight: Dict[Any, Any] = {}
        hard = True
        try:
            while tasks or inflight:
                while tasks and len(inflight) < 2 * workers:
                    t = tasks.popleft()
                    try:
                        inflight[ex.submit(_call, t)] = t
                    except BrokenProcessPool:
                        tasks.appendleft(t)
                        raise
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                broken = False
                for fut in done:
                    t = inflight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        suspects.append(t)
                        broken = True
                        continue
                    yield result
                if broken:
                    raise BrokenProcessPool
            hard = False
        except BrokenProcessPool:
            check_stopped(procs)
            suspects.extend(inflight.values())
            inflight.clear()
        finally:
            _shutdown(ex, procs, hard)


def isolated_map(fn: Callable[[Any, Any], Any], arg: Any,
                 tasks: Iterable[Any], workers: int,
                 on_crash: Callable[[Any], Any],
                 setup: Optional[Callable[[], None]] = None,
                 start_method: Optional[str] = None,
                 preload: Sequence[str] = ()) -> Iterator[Any]:
    """``fn(task, arg)`` of every task, in completion order, computed by
    ``workers`` processes (``workers <= 1``: in this process).

    Args:
        fn: Picklable (module-level) function of a task and ``arg``.
        arg: Argument shared by all tasks (sent once per worker).
        tasks: Picklable tasks.
        workers: Number of worker processes.
        on_crash: Result of a task that killed its worker twice.
        setup: Picklable function run once in each worker (thread limits).
        start_method: multiprocessing start method (default: forkserver).
        preload: Modules the fork server imports once.

    Raises:
        Stopped: The workers were ended by a stop signal.
    """
    queue = deque(tasks)
    if workers <= 1:
        while queue:
            yield fn(queue.popleft(), arg)
        return
    pool = _Pool(fn, arg, on_crash, setup, mp_context(start_method, preload))
    suspects: List[Any] = []
    while queue or suspects:
        # Tasks that were in flight when a worker died: run each alone.
        while suspects:
            yield pool.alone(suspects.pop())
        if queue:
            yield from pool.batch(queue, workers, suspects)
