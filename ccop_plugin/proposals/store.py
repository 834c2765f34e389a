"""Resumable on-disk state of a proposal run and the final COCO-style JSON.

A run keeps its state in a *work dir*::

    <work_dir>/meta.json                   settings + digest of the image list
    <work_dir>/images.json                 the ordered image list
                                           [[id, file_name], ...]
    <work_dir>/shard-00003-of-00016.jsonl  one JSON line per finished image
    <work_dir>/written.json                outputs this work dir wrote (size,
                                           mtime), so a rerun may replace them

Shard files are append-only and flushed after every image, so a killed run
loses at most the image being written; a truncated last line is dropped on
restart. A line is either a result::

    {"k": 7, "id": 8, "file_name": "a/b.jpg", "width": 640, "height": 480,
     "boxes": [[x, y, w, h], ...], "stage": 0, "n_cand": 812, "sec": 2.91,
     "src": [123456, 1700000000000000000]}

or a failure (unreadable / corrupt image)::

    {"k": 7, "id": 8, "file_name": "a/b.jpg", "error": "...", "src": [...]}

``src`` is the image file's ``[size, mtime_ns]`` when it was read (``null``
if it could not be stat'ed): a resumed run recomputes an image whose file
changed since. Optional fields: ``search_hw`` (the ``[height, width]`` the
search ran at when the cost bounds shrank the image) and ``redo`` (how many
times the image was recomputed: the record with the highest ``redo`` wins;
at equal ``redo`` a result wins over a failure).

The whole work dir is locked while a run uses it (``flock`` on the folder:
shared by the shards of a run, exclusive while ``--overwrite`` empties it).

:func:`merge_work_dir` checks that every image of the list has exactly one
result or failure and writes the COCO-style proposal JSON atomically
(:func:`ccop_plugin.proposals.proposal_file.write_proposal_file`).
"""
import glob
import json
import os
import os.path as osp
import re
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.fileio import atomic_write_text, same_file
from .proposal_file import fmt_num, write_proposal_file
from .sources import ImageEntry, entries_digest

WORK_FORMAT = 'ccop_plugin-proposals-work/1'
SHARD_RE = re.compile(r'^shard-(\d+)-of-(\d+)\.jsonl$')


class ProposalStateError(RuntimeError):
    """The work dir or its shard files do not fit the requested run."""


# --------------------------------------------------------------------------
# small file helpers
# --------------------------------------------------------------------------
def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def check_writable(path: str, what: str, is_dir: bool = False) -> None:
    """Fail now, not after hours of work, if ``path`` cannot be written.

    Creates the folder (of) ``path`` and a probe file in it, then removes
    the probe.

    Raises:
        ProposalStateError: naming ``what`` (e.g. ``'--out'``), the path and
            the reason.
    """
    d = osp.abspath(path) if is_dir else osp.dirname(osp.abspath(path))
    if not is_dir and osp.isdir(path):
        raise ProposalStateError(f'{what} {path} is a folder; give a file '
                                 'name')
    probe = osp.join(d, f'.write-test.{os.getpid()}')
    try:
        os.makedirs(d, exist_ok=True)
        with open(probe, 'wb') as f:
            f.write(b'x')
    except OSError as e:
        raise ProposalStateError(
            f'cannot write {what} {path} ({e.strerror or e}: '
            f'{e.filename or d}); choose a writable location') from None
    finally:
        _remove_quietly(probe)


def shard_path(work_dir: str, shard: Tuple[int, int]) -> str:
    i, n = shard
    return osp.join(work_dir, f'shard-{i:05d}-of-{n:05d}.jsonl')


def shard_files(work_dir: str) -> List[str]:
    """All shard files of a work dir, sorted."""
    return sorted(p for p in glob.glob(osp.join(work_dir, 'shard-*.jsonl'))
                  if SHARD_RE.match(osp.basename(p)))


def boxes_to_record(boxes_xyxy: np.ndarray) -> List[List[Any]]:
    """``(K, 4)`` ``xyxy`` -> list of rounded COCO ``[x, y, w, h]``."""
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, dtype=np.float64).reshape(
            -1, 4).tolist():
        out.append([fmt_num(x1), fmt_num(y1), fmt_num(x2 - x1),
                    fmt_num(y2 - y1)])
    return out


# --------------------------------------------------------------------------
# work dir
# --------------------------------------------------------------------------
WORK_FILE_RE = re.compile(
    r'^(meta\.json|images\.json|written\.json|shard-\d+-of-\d+\.jsonl)'
    r'(\.tmp\.\d+)?$|^\.write-test\.\d+$'
    # temporary files of ccop_plugin.utils.fileio.atomic_path
    r'|^\.(meta|images|written)\.json\.\w+\.tmp$')


class WorkDirLock:
    """``flock`` on the work dir itself, held for a whole run.

    Runs (and the shards of one run) hold it shared; ``exclusive=True``
    (``--overwrite``) fails while any other run holds it, so a running job's
    state is never deleted under it. The folder is created if needed.

    Raises:
        ProposalStateError: another run holds the lock.
    """

    def __init__(self, work_dir: str, exclusive: bool = False):
        import fcntl
        self.work_dir = work_dir
        os.makedirs(work_dir, exist_ok=True)
        self._fd: Optional[int] = os.open(work_dir,
                                          os.O_RDONLY | os.O_DIRECTORY)
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            self._fd = None
            if not isinstance(e, BlockingIOError):
                raise ProposalStateError(
                    f'cannot lock work dir {work_dir} ({e.strerror or e}); '
                    'use a --work-dir on a local file system') from None
            if exclusive:
                msg = (f'work dir {work_dir} is in use by a running job; '
                       '--overwrite would delete its results. Stop that job '
                       'first, or use another --work-dir / --out')
            else:
                msg = (f'work dir {work_dir} is being cleared by a run with '
                       '--overwrite; wait for it to start, or use another '
                       '--work-dir / --out')
            raise ProposalStateError(msg) from None

    def share(self) -> None:
        """Downgrade an exclusive lock to shared (other shards may join)."""
        import fcntl
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def __enter__(self) -> 'WorkDirLock':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def clear_work_dir(work_dir: str) -> int:
    """Delete the state files of a work dir (caller holds the exclusive
    :class:`WorkDirLock`); the folder itself stays. Returns files deleted.

    Raises:
        ProposalStateError: the folder holds other files (not a work dir:
            nothing is deleted).
    """
    names = sorted(os.listdir(work_dir))
    other = [n for n in names if not WORK_FILE_RE.match(n)
             or osp.isdir(osp.join(work_dir, n))]
    if other:
        raise ProposalStateError(
            f'--overwrite: {work_dir} holds files that are not proposal '
            f'state ({", ".join(other[:5])}{" ..." if len(other) > 5 else ""})'
            '; nothing was deleted. Use an empty or new --work-dir')
    for n in names:
        os.remove(osp.join(work_dir, n))
    return len(names)


def _written_path(work_dir: str) -> str:
    return osp.join(work_dir, 'written.json')


def _read_written(work_dir: str) -> Dict[str, List[int]]:
    try:
        with open(_written_path(work_dir)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record_written(work_dir: str, out: str) -> None:
    """Remember that this work dir wrote ``out`` (its size and mtime)."""
    st = os.stat(out)
    written = _read_written(work_dir)
    written[osp.abspath(out)] = [st.st_size, st.st_mtime_ns]
    atomic_write_text(_written_path(work_dir), json.dumps(written, indent=1))


def check_out_not_input(out: str, inputs: Sequence[Optional[str]] = (),
                        img_dir: Optional[str] = None,
                        entries: Sequence[ImageEntry] = ()) -> None:
    """Refuse an ``out`` that is one of the run's inputs, whatever the flags:
    a file of ``inputs`` (the ``--ann-file`` image list, for COCO the
    instances file; also through a link) or one of the images.

    Raises:
        ProposalStateError: naming ``out`` and the input.
    """
    for path in inputs:
        if path and same_file(out, path):
            raise ProposalStateError(
                f'--out {out} is the input {path} of this run (it would be '
                'replaced by the proposals); choose another --out')
    if img_dir is None or not entries:
        return
    rel = osp.relpath(osp.realpath(out), osp.realpath(img_dir))
    if rel.startswith(os.pardir):
        return
    rel = osp.normpath(rel)
    if any(osp.normpath(e.file_name) == rel for e in entries):
        raise ProposalStateError(
            f'--out {out} is an input image of this run (in {img_dir}); '
            'choose another --out')


def check_out_replaceable(work_dir: str, out: str, overwrite: bool) -> None:
    """Refuse to replace an existing ``out`` that this work dir did not
    write (another run's output, or a file edited since), unless
    ``overwrite``.

    Raises:
        ProposalStateError: naming the file and the fix.
    """
    if overwrite or not osp.lexists(out):
        return
    st = os.stat(out)
    mine = _read_written(work_dir).get(osp.abspath(out))
    if mine == [st.st_size, st.st_mtime_ns]:
        return
    why = ('was changed since this run wrote it' if mine else
           f'was not written by this run (work dir {work_dir})')
    raise ProposalStateError(
        f'--out {out} already exists and {why}; pass --overwrite to replace '
        'it, or choose another --out')


def prepare_work_dir(work_dir: str, entries: Sequence[ImageEntry],
                     config: Dict[str, Any], source: Dict[str, Any]) -> None:
    """Create the work dir, or check that an existing one fits this run.

    Raises:
        ProposalStateError: the work dir was made with other settings or for
            another image list.
    """
    os.makedirs(work_dir, exist_ok=True)
    meta_path = osp.join(work_dir, 'meta.json')
    meta = dict(format=WORK_FORMAT, config=config, num_images=len(entries),
                images_sha1=entries_digest(entries), source=source)
    if osp.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        problems = []
        if old.get('format') != WORK_FORMAT:
            problems.append(f'format {old.get("format")!r} != {WORK_FORMAT!r}')
        # a setting added after the work dir was made compares as None (the
        # behaviour before it existed)
        oc = dict({k: None for k in config}, **(old.get('config') or {}))
        if oc != config:
            diffs = [f'{k}: {oc.get(k)!r} -> {config.get(k)!r}'
                     for k in sorted(set(oc) | set(config))
                     if oc.get(k) != config.get(k)]
            problems.append('settings differ (' + '; '.join(diffs) + '); '
                            'pass the old values to resume')
        if old.get('images_sha1') != meta['images_sha1']:
            problems.append(f'image list differs ({old.get("num_images")} '
                            f'images before, {len(entries)} now)')
        if problems:
            raise ProposalStateError(
                f'work dir {work_dir} belongs to another run: '
                + '; '.join(problems) + '. Use another --work-dir (or --out), '
                'or --overwrite to start over.')
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=1))
    images_path = osp.join(work_dir, 'images.json')
    if not osp.exists(images_path):
        atomic_write_text(images_path, json.dumps(
            [[e.id, e.file_name] for e in entries], separators=(',', ':')))


def load_work_dir(work_dir: str) -> Tuple[Dict[str, Any], List[ImageEntry]]:
    """``(meta, entries)`` of an existing work dir."""
    meta_path = osp.join(work_dir, 'meta.json')
    images_path = osp.join(work_dir, 'images.json')
    for p in (meta_path, images_path):
        if not osp.exists(p):
            raise ProposalStateError(
                f'{work_dir} is not a proposal work dir ({osp.basename(p)} '
                'is missing)')
    with open(meta_path) as f:
        meta = json.load(f)
    with open(images_path) as f:
        entries = [ImageEntry(int(i), str(n)) for i, n in json.load(f)]
    if entries_digest(entries) != meta.get('images_sha1'):
        raise ProposalStateError(
            f'{images_path} does not match {meta_path} (edited by hand?)')
    return meta, entries


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


def finished_names(work_dir: str, include_failures: bool = True) -> set:
    """File names that already have a result (and failure, if asked) in any
    shard file of the work dir."""
    return {n for n, rec in finished_records(work_dir).items()
            if include_failures or 'error' not in rec}


# --------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------
def collect_records(work_dir: str, entries: Sequence[ImageEntry]
                    ) -> Tuple[Dict[str, Dict[str, Any]],
                               Dict[str, Dict[str, Any]], Dict[str, int]]:
    """Gather results and failures of all shard files; check consistency.

    Returns:
        tuple: ``(results, failures, stats)`` keyed by file name. Of several
        records of an image the one with the highest ``redo`` counts (an
        image recomputed because its file changed); at equal ``redo`` a
        result beats a failure (``--retry-failed`` on old work dirs).

    Raises:
        ProposalStateError: a record names an image outside the list, or an
            image has two results.
    """
    known = {e.file_name for e in entries}
    stats: Dict[str, int] = {}
    best, where, dups = _pick_records(work_dir, stats)
    unknown = [(n, where[n]) for n in best if n not in known]
    if unknown:
        raise ProposalStateError(
            f'{len(unknown)} records in {work_dir} name images that are not '
            f'in its image list, e.g. {unknown[:3]}')
    if dups:
        raise ProposalStateError(
            f'{len(dups)} images have more than one result in {work_dir} '
            f'(two runs wrote the same images?), e.g. {dups[:3]}')
    results: Dict[str, Dict[str, Any]] = {}
    failures: Dict[str, Dict[str, Any]] = {}
    for name, rec in best.items():
        if 'error' in rec:
            failures[name] = rec
        else:
            rec['boxes'] = np.asarray(rec.get('boxes', []),
                                      dtype=np.float64).reshape(-1, 4)
            results[name] = rec
    return results, failures, stats


def failures_report_path(out: str) -> str:
    root, _ = osp.splitext(out)
    return root + '.failures.txt'


def merge_work_dir(work_dir: str, out: str, allow_missing: bool = False,
                   log=print, overwrite: bool = False) -> Dict[str, Any]:
    """Check a work dir is complete and write the final JSON + failure report.

    Every image of the work dir's list must have exactly one result or a
    recorded failure. Failed images are left out of the JSON and listed in
    ``<out stem>.failures.txt`` (tab-separated file name and reason).

    Args:
        work_dir: Work dir of the run (all shards).
        out: Path of the COCO-style JSON to write.
        allow_missing: Write what there is even if images are missing.
        log: Print function.
        overwrite: Replace ``out`` even if another run wrote it.

    Returns:
        dict: Counts (images, annotations, failures, missing, images shrunk
        by the cost bounds) and paths.

    Raises:
        ProposalStateError: images are missing (unless ``allow_missing``),
            duplicated, or unknown; ``out`` exists and was not written from
            this work dir (unless ``overwrite``); ``out`` is not writable.
    """
    if not osp.isdir(work_dir):
        raise ProposalStateError(f'{work_dir} is not a proposal work dir '
                                 '(no such folder)')
    with WorkDirLock(work_dir):  # not while --overwrite is clearing it
        return _merge_work_dir(work_dir, out, allow_missing, log, overwrite)


def _merge_work_dir(work_dir: str, out: str, allow_missing: bool, log,
                    overwrite: bool) -> Dict[str, Any]:
    meta, entries = load_work_dir(work_dir)
    check_writable(out, '--out')
    check_out_replaceable(work_dir, out, overwrite)
    results, failures, stats = collect_records(work_dir, entries)
    missing = [e.file_name for e in entries
               if e.file_name not in results and e.file_name not in failures]
    if missing and not allow_missing:
        raise ProposalStateError(
            f'{len(missing)} of {len(entries)} images have no result yet in '
            f'{work_dir} (e.g. {missing[:3]}); run the missing shards again '
            '(finished images are skipped) and merge again')
    info = dict(description='selective-search object proposals',
                tool='ccop_plugin tools/selective_search.py',
                config=meta.get('config'), num_failed=len(failures))
    try:
        counts = write_proposal_file(out, entries, results, info)
        record_written(work_dir, out)
    except OSError as e:  # disk full, ...: the temporary file is gone
        raise ProposalStateError(
            f'cannot write {out} ({e.strerror or e}); it was left as it was. '
            f'Free space and run the same command again (the results in '
            f'{work_dir} are kept)') from None
    report = failures_report_path(out)
    if failures:
        lines = [f'{e.file_name}\t{failures[e.file_name]["error"]}'
                 for e in entries if e.file_name in failures]
        atomic_write_text(report, '\n'.join(lines) + '\n')
    elif osp.exists(report):
        os.remove(report)
    summary = dict(out=out, images=counts['images'],
                   annotations=counts['annotations'], failures=len(failures),
                   failures_report=report if failures else None,
                   missing=len(missing), skipped_lines=stats.get('bad', 0),
                   partial_lines=stats.get('partial', 0),
                   bounded=sum(1 for r in results.values()
                               if r.get('search_hw')),
                   size_mb=osp.getsize(out) / 2**20)
    if failures:
        log(f'{len(failures)} unreadable images left out; listed in {report}')
    if stats.get('bad'):
        log(f'warning: {stats["bad"]} broken lines in shard files skipped')
    return summary
