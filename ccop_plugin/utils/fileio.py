"""Atomic file writing: the package's one way to replace a file.

Every writer of the package (proposal files and state, the datagen images
and annotations, converted checkpoints, stage records, the science record,
fine-tuning metrics) goes through :func:`atomic_path`:

* the data goes to a temporary file in the destination's folder (same file
  system, so the rename is atomic), named ``.<name>.<random>.tmp``;
* it is flushed and ``fsync``'ed, given the permissions of a new file under
  the user's umask (``0666 & ~umask``; :func:`tempfile.mkstemp` makes it
  0600), and renamed over the destination with :func:`os.replace`;
* on any failure (disk full, an exception of the writer, Ctrl-C) the
  temporary file is removed and the destination is left as it was.
"""
import json
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import IO, Any, Iterator

__all__ = [
    'atomic_path', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
    'atomic_write_json', 'current_umask'
]


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


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``.

    For writers that take a file name (``torch.save``, ``cv2.imwrite``,
    a streaming JSON writer). The folder of ``path`` is created if needed.
    After the ``with`` block the file is ``fsync``'ed, gets the umask's
    permissions and is renamed to ``path``; if the block (or any of these
    steps) raises, the temporary file is removed and ``path`` is untouched.

    Example:
        >>> with atomic_path('model.pth') as tmp:
        ...     torch.save(state, tmp)
    """
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.' + osp.basename(path) + '.',
                               suffix='.tmp')
    os.close(fd)
    try:
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


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
