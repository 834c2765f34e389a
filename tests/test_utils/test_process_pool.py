"""isolated_map tells a crashed worker from a stopped one by the workers'
exit codes; these runs check both with real worker processes."""
import os
import signal
import time

import pytest

from ccop_plugin.utils import process_pool


def _double_or_die(task, arg):
    if task == 'die':
        os._exit(3)  # a crash: the worker exits with an error code
    return task * arg


def _double_or_stop(task, arg):
    if task == 'stop':
        os.kill(os.getpid(), signal.SIGTERM)  # the worker is stopped
        time.sleep(10)
    return task * arg


def test_a_task_that_kills_its_worker_twice_becomes_on_crash():
    out = list(process_pool.isolated_map(
        _double_or_die, 2, [1, 'die', 2, 3], workers=2,
        on_crash=lambda t: ('crashed', t), start_method='fork'))
    assert sorted(map(str, out)) == sorted(
        map(str, [2, 4, 6, ('crashed', 'die')]))


def test_a_worker_ended_by_a_stop_signal_stops_the_run():
    with pytest.raises(process_pool.Stopped):
        list(process_pool.isolated_map(
            _double_or_stop, 2, [1, 'stop', 2], workers=2,
            on_crash=lambda t: ('crashed', t), start_method='fork'))


class _RacyExit:
    """A worker the executor's thread is reaping: its first ``exitcode``
    reads None (the other thread's waitpid won), the next its code."""

    def __init__(self, code, racy=True):
        self.code, self.reads = code, (0 if racy else 1)

    def join(self, timeout=None):
        pass

    @property
    def exitcode(self):
        self.reads += 1
        return None if self.reads == 1 else self.code


def test_a_crash_read_while_the_executor_reaps_is_still_a_crash():
    """CI once saw a worker's os._exit(3) read as None (alive) and its
    sibling's SIGTERM from the executor as a stop: Stopped instead of the
    crash's retry."""
    process_pool.check_stopped([_RacyExit(3),
                                _RacyExit(-signal.SIGTERM, racy=False)])
    with pytest.raises(process_pool.Stopped):
        process_pool.check_stopped([_RacyExit(0),
                                    _RacyExit(-signal.SIGTERM)])
