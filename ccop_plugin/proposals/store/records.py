"""Shard files of a work dir: the record format, the append-only writer,
and which record counts for each image."""
import json
import os
import os.path as osp
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..proposal_file import fmt_num
from .work_dir import ProposalStateError, shard_files


def boxes_to_record(boxes_xyxy: np.ndarray) -> List[List[Any]]:
    """``(K, 4)`` ``xyxy`` -> list of rounded COCO ``[x, y, w, h]``."""
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, dtype=np.float64).reshape(
            -1, 4).tolist():
        out.append([fmt_num(x1), fmt_num(y1), fmt_num(x2 - x1),
                    fmt_num(y2 - y1)])
    return out


# --------------------------------------------------------------------------
# shard files
# --------------------------------------------------------------------------
def iter_records(path: str, stats: Optional[Dict[str, int]] = None
                 ) -> Iterator[Dict[str, Any]]:
    """Records of a shard file; unparsable lines are skipped and counted.

    A partial last line (a run killed mid-write, or a shard still being
    written) is skipped silently and counted under ``'partial'``; a broken
    line elsewhere is counted under ``'bad'``.
    """
    stats = stats if stats is not None else {}
    with open(path, 'rb') as f:
        data = f.read()
    lines = data.split(b'\n')
    # The piece after the last newline is either empty or a partial record.
    if lines and lines[-1].strip():
        stats['partial'] = stats.get('partial', 0) + 1
    for line in lines[:-1]:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or 'file_name' not in rec:
                raise ValueError
        except ValueError:
            stats['bad'] = stats.get('bad', 0) + 1
            continue
        yield rec


def drop_partial_tail(fd: int) -> int:
    """Truncate an open shard file after its last newline; bytes dropped."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    # Scan backwards in blocks for the last newline.
    block, end = 1 << 16, size
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        pos = chunk.rfind(b'\n')
        if pos >= 0:
            keep = start + pos + 1
            break
        end = start
    else:
        keep = 0
    if keep < size:
        os.ftruncate(fd, keep)
    return size - keep


class ShardWriter:
    """Append-only JSON-lines writer of one shard, locked against a second
    writer, flushed after every record and fsync'ed every few seconds."""

    def __init__(self, path: str, fsync_every_s: float = 5.0):
        import fcntl
        self.path = path
        self._f = open(path, 'a+b')
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.close()
            raise ProposalStateError(
                f'{path} is being written by another process (same --shard '
                'twice?)') from None
        self.dropped_bytes = drop_partial_tail(self._f.fileno())
        self._fsync_every = fsync_every_s
        self._last_sync = time.monotonic()

    def write(self, record: Dict[str, Any]) -> None:
        line = json.dumps(record, separators=(',', ':'), allow_nan=False)
        self._f.write(line.encode('utf-8') + b'\n')
        self._f.flush()
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_every:
            os.fsync(self._f.fileno())
            self._last_sync = now

    def close(self, quiet: bool = False) -> None:
        """Flush, sync and close (releasing the lock). ``quiet``: on an
        error path, close even if flushing fails (disk full); a torn last
        line is dropped by the next run."""
        if self._f.closed:
            return
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError:
            if not quiet:
                try:
                    self._f.close()
                except OSError:
                    pass
                raise
        try:
            self._f.close()  # releases the lock
        except OSError:
            if not quiet:
                raise

    def __enter__(self) -> 'ShardWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def source_stamp(path: str) -> Optional[List[int]]:
    """``[size, mtime_ns]`` of an image file, or ``None`` if it cannot be
    stat'ed (missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _rank(rec: Dict[str, Any]) -> Tuple[int, int]:
    return int(rec.get('redo', 0)), int('error' not in rec)


_LIGHT_KEYS = ('file_name', 'error', 'src', 'redo')


def _pick_records(work_dir: str, stats: Optional[Dict[str, int]] = None,
                  light: bool = False
                  ) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, str],
                             List[Tuple[str, str, str]]]:
    """The record that counts for each image of a work dir (highest
    ``redo``; at equal ``redo`` a result beats a failure, a later failure an
    earlier one), the shard file it came from, and duplicated results
    ``(name, file, file)`` (two results at the same ``redo``). ``light``
    keeps only the fields that decide what to recompute (no boxes: a
    dataset's worth of boxes as Python lists would take gigabytes)."""
    best: Dict[str, Dict[str, Any]] = {}
    where: Dict[str, str] = {}
    dups = []
    for path in shard_files(work_dir):
        for rec in iter_records(path, stats):
            if light:
                rec = {k: rec[k] for k in _LIGHT_KEYS if k in rec}
            name = rec['file_name']
            old = best.get(name)
            if old is not None:
                r_old, r_new = _rank(old), _rank(rec)
                if r_new == r_old and 'error' not in rec:
                    dups.append((name, where[name], osp.basename(path)))
                    continue
                if r_new < r_old:
                    continue
            best[name] = rec
            where[name] = osp.basename(path)
    return best, where, dups


def finished_records(work_dir: str) -> Dict[str, Dict[str, Any]]:
    """The record (result or failure) that counts for each image that has
    one in any shard file of the work dir; only ``file_name``, ``error``,
    ``src`` and ``redo`` are kept."""
    return _pick_records(work_dir, light=True)[0]
