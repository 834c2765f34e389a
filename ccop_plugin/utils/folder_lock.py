"""One writer per folder: an advisory lock held on a folder for a whole run.

A tool that writes into a folder (``tools/train.py``'s work dir, the main
job's work dir, a proposal run's state) holds :class:`FolderLock` on it while
it runs. The lock is ``flock`` on the folder itself, so the kernel releases it
when the holder exits, however it exits (a crash or ``SIGKILL`` leaves no stale
lock to clean up). While holding it exclusively, the holder describes itself in
``<folder>/.lock-holder.json`` (pid, host, command, start time) so that a
second run is refused with one line naming the holder.

``exclusive=False`` takes the lock shared: several cooperating processes (the
shards of one proposal run) may hold it together, while an exclusive holder
keeps all of them out.
"""
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional

__all__ = ['FolderLock', 'FolderInUseError', 'HOLDER_FILE']

HOLDER_FILE = '.lock-holder.json'


class FolderInUseError(RuntimeError):
    """Another process holds the folder's lock; the message is one line."""


def _describe_holder(folder: str) -> str:
    try:
        with open(osp.join(folder, HOLDER_FILE), encoding='utf-8') as f:
            info = json.load(f)
        when = time.strftime('%Y-%m-%d %H:%M:%S',
                             time.localtime(float(info['started'])))
        cmd = str(info.get('command', ''))[:120]
        return (f"pid {int(info['pid'])} on {info.get('host', '?')}, "
                f'started {when}: {cmd}')
    except (OSError, ValueError, KeyError, TypeError):
        return 'another process'


class FolderLock:
    """Hold an ``flock`` on ``folder`` (created if needed) until closed.

    Args:
        folder: the folder to own.
        exclusive: ``True`` for a single owner (the default), ``False`` for a
            shared lock that cooperating processes hold together.
        what: how the refusal names the folder (``'work dir'``).
        hint: the end of the refusal (what the user can do instead).

    Raises:
        FolderInUseError: another process holds a conflicting lock, or the
            folder's file system does not support locking.
    """

    def __init__(self, folder: str, exclusive: bool = True,
                 what: str = 'work dir',
                 hint: str = 'wait for it to finish, or use another folder'):
        import fcntl
        self.folder = folder
        self.exclusive = exclusive
        os.makedirs(folder, exist_ok=True)
        self._fd: Optional[int] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            self._fd = None
            if not isinstance(e, BlockingIOError):
                raise FolderInUseError(
                    f'cannot lock {what} {folder} ({e.strerror or e}); use a '
                    'folder on a local file system') from None
            raise FolderInUseError(
                f'{what} {folder} is in use by {_describe_holder(folder)}; '
                f'{hint}') from None
        if exclusive:
            self._write_holder()

    def _write_holder(self) -> None:
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    started=time.time(), command=' '.join(sys.argv))
        path = osp.join(self.folder, HOLDER_FILE)
        try:
            with open(path + '.tmp', 'w', encoding='utf-8') as f:
                json.dump(info, f)
            os.replace(path + '.tmp', path)
        except OSError:
            pass  # the lock holds without the description

    def share(self) -> None:
        """Downgrade an exclusive lock to shared (cooperators may join)."""
        import fcntl
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        self.exclusive = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is None:
            return
        if self.exclusive:
            try:
                os.remove(osp.join(self.folder, HOLDER_FILE))
            except OSError:
                pass
        os.close(self._fd)  # releases the flock
        self._fd = None

    def __enter__(self) -> 'FolderLock':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
