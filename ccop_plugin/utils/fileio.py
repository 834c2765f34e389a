"""Atomic file writing: the package's one way to replace a file.

Every writer of the package (proposal files and state, the datagen images
and annotations, converted checkpoints, stage records, the science record,
fine-tuning metrics) goes through :func:`atomic_path`:

* the data goes to a temporary file in the destination's folder (same file
  system, so the rename is atomic), named ``.<name>.<random>.tmp``;
* it is flushed and ``fsync``'ed, given the permissions of the file it
  replaces (a 0600 file stays 0600) or, for a new file, those of the user's
  umask (``0666 & ~umask``; :func:`tempfile.mkstemp` makes it 0600), and
  renamed over the destination with :func:`os.replace`;
* on any failure (disk full, an exception of the writer, Ctrl-C) the
  temporary file is removed and the destination is left as it was;
* SIGTERM during the write is handled like Ctrl-C (when the process has no
  SIGTERM handler of its own): it raises :class:`Terminated`, a
  ``SystemExit`` with status 143, so the temporary file is removed on the
  way out;
* the writer holds an ``flock`` on its temporary file while it writes, so a
  temporary file that nobody holds was left by a writer that died
  (``SIGKILL``, power loss): the next write of the same destination removes
  it (:func:`remove_stale_temporaries`).
"""
import json
import os
import os.path as osp
import re
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterator, Optional, Set, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: no temporary-file locks, no stale cleanup
    fcntl = None

__all__ = [
    'atomic_path', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
    'atomic_write_json', 'current_umask', 'remove_stale_temporaries',
    'same_file', 'Terminated'
]

# mkstemp's random part: letters, digits, underscore
_TMP_RE = re.compile(r'^\.(.+)\.(\w+)\.tmp$')


class Terminated(SystemExit):
    """SIGTERM arrived while a file was written (exit status 143, as a
    shell reports a process ended by SIGTERM); the write was undone."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def current_umask() -> int:
    """The process umask (read without changing it where Linux allows)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file (through a relative path,
    a symlink of the file or of a folder, or a hard link)."""
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _new_mode(path: str) -> int:
    """Permissions for the file that replaces ``path``: those of the file it
    replaces, else the umask's."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~current_umask()


def _held_by_a_writer(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no locks on this file system: cannot tell, keep it
        return True
    return False


# folder -> (its mtime when last scanned or last written by this process,
# the temporary-file names seen in it); rescanned when another process
# changed the folder, so a folder of many files is not listed per write
_SCANNED: Dict[str, Tuple[int, Set[str]]] = {}
_SCAN_LOCK = threading.Lock()


def _dir_mtime(folder: str) -> Optional[int]:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _temporaries_in(folder: str) -> Set[str]:
    mtime = _dir_mtime(folder)
    with _SCAN_LOCK:
        cached = _SCANNED.get(folder)
        if cached is not None and mtime is not None and cached[0] == mtime:
            return cached[1]
    try:
        with os.scandir(folder) as it:
            names = {e.name for e in it if e.name.startswith('.')
                     and e.name.endswith('.tmp') and _TMP_RE.match(e.name)}
    except OSError:
        return set()
    with _SCAN_LOCK:
        _SCANNED[folder] = (mtime, names)
    return names


def _note_own_write(folder: str) -> None:
    """Our own write changed the folder's mtime, not its stale files."""
    with _SCAN_LOCK:
        if folder in _SCANNED:
            _SCANNED[folder] = (_dir_mtime(folder), _SCANNED[folder][1])


def remove_stale_temporaries(path: str) -> int:
    """Remove the temporary files of ``path`` that no writer holds.

    A writer of :func:`atomic_path` holds an ``flock`` on its temporary file
    ``.<name>.<random>.tmp`` until it renames or removes it; one that nobody
    holds was left by a writer that was killed (``SIGKILL``, power loss) and
    is removed. Temporary files of other destinations are left alone.

    Returns:
        int: How many files were removed.
    """
    if fcntl is None:
        return 0
    folder = osp.dirname(osp.abspath(path))
    name = osp.basename(path)
    removed = 0
    names = _temporaries_in(folder)
    for tmp_name in sorted(names):
        m = _TMP_RE.match(tmp_name)
        if m is None or m.group(1) != name:
            continue
        tmp = osp.join(folder, tmp_name)
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            names.discard(tmp_name)
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or _held_by_a_writer(fd):
                continue
            # still the file that was locked (not renamed meanwhile)
            if os.lstat(tmp).st_ino == st.st_ino:
                os.remove(tmp)
                removed += 1
            names.discard(tmp_name)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _raise_terminated(signum, frame):
    raise Terminated()


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (only in the
    main thread, and only if the process has no SIGTERM handler of its
    own: a tool that handles SIGTERM keeps its handling)."""
    installed = False
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)
        installed = True  # (a nested write finds it installed)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``.

    For writers that take a file name (``torch.save``, ``cv2.imwrite``,
    a streaming JSON writer). The folder of ``path`` is created if needed.
    Stale temporary files of ``path`` (left by a killed writer) are removed
    first. After the ``with`` block the file is ``fsync``'ed, gets the
    permissions of the file it replaces (the umask's for a new file) and is
    renamed to ``path``; if the block (or any of these steps) raises, SIGTERM
    included (:class:`Terminated`), the temporary file is removed and
    ``path`` is untouched.

    Example:
        >>> with atomic_path('model.pth') as tmp:
        ...     torch.save(state, tmp)
    """
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    remove_stale_temporaries(path)
    with _sigterm_as_exception():
        fd, tmp = tempfile.mkstemp(dir=d,
                                   prefix='.' + osp.basename(path) + '.',
                                   suffix='.tmp')
        try:
            if fcntl is not None:
                try:  # held until the file is renamed or removed
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError:
                    pass
            yield tmp
            _fsync_path(tmp)
            os.chmod(tmp, _new_mode(path))
            os.replace(tmp, path)
        except BaseException as e:
            _remove_quietly(tmp)
            if isinstance(e, OSError) and e.errno is not None and \
                    e.filename is None:
                e.filename = path  # a failed write() names no file
            raise
        finally:
            os.close(fd)
    _note_own_write(d)


@contextmanager
def atomic_open(path: str, mode: str = 'w', **kwargs) -> Iterator[IO]:
    """``open`` a temporary file that replaces ``path`` when the block ends
    without an exception (see :func:`atomic_path`).

    Args:
        path (str): Destination.
        mode (str): ``'w'`` or ``'wb'`` (``'x'``/``'a'`` make no sense here).
        **kwargs: Passed to :func:`open` (``encoding``, ``newline``, ...).
    """
    if not mode.startswith('w'):
        raise ValueError(f'atomic_open writes a new file; mode {mode!r} is '
                         "not 'w' or 'wb'")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_path`)."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_text(path: str, text: str, encoding: str = 'utf-8') -> None:
    """Replace ``path`` by ``text`` atomically (see :func:`atomic_path`)."""
    with atomic_open(path, 'w', encoding=encoding) as f:
        f.write(text)


def atomic_write_json(path: str, obj: Any, indent: int = 1, end: str = '\n',
                      **dumps_kwargs) -> None:
    """Replace ``path`` by ``obj`` as JSON atomically.

    Args:
        path (str): Destination.
        obj: JSON-serialisable object (serialised before anything is
            written: an object that cannot be serialised leaves no file).
        indent (int): ``json.dumps`` indent.
        end (str): Appended to the JSON text.
        **dumps_kwargs: Passed to :func:`json.dumps` (``default``,
            ``allow_nan``, ...).
    """
    text = json.dumps(obj, indent=indent, **dumps_kwargs) + end
    atomic_write_text(path, text)
