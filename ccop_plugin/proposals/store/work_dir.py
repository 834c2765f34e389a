"""The work dir of a proposal run: its files, lock, meta and the outputs
it wrote (see :mod:`ccop_plugin.proposals.store` for the layout).

An owned folder like the main job's: :class:`WorkDirLock` is a
``FolderLock``, ``meta.json`` a checked record (:mod:`ccop_plugin.utils.
records`) and ``written.json`` a ``Manifest`` of the outputs written
(:mod:`ccop_plugin.utils.owned_folder`)."""
import glob
import json
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...utils.fileio import atomic_write_json, atomic_write_text, same_file
from ...utils.folder_lock import HOLDER_FILE, FolderInUseError, FolderLock
from ...utils.owned_folder import Manifest, settings_diff
from ...utils.records import read_record, write_record
from ..sources import ImageEntry, entries_digest

WORK_FORMAT = 'ccop_plugin-proposals-work/1'
# the writer tag of meta.json
WRITER = 'ccop_plugin.proposals.store.prepare_work_dir'
SHARD_RE = re.compile(r'^shard-(\d+)-of-(\d+)\.jsonl$')


class ProposalStateError(RuntimeError):
    """The work dir or its shard files do not fit the requested run."""


class WorkDirInUseError(ProposalStateError, FolderInUseError):
    """Another run holds the work dir's lock (one line)."""


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


# --------------------------------------------------------------------------
# work dir
# --------------------------------------------------------------------------
WORK_FILE_RE = re.compile(
    r'^(meta\.json|images\.json|written\.json|shard-\d+-of-\d+\.jsonl)'
    r'(\.tmp\.\d+)?$|^\.write-test\.\d+$'
    # temporary files of ccop_plugin.utils.fileio.atomic_path
    r'|^\.(meta|images|written)\.json\.\w+\.tmp$')


class WorkDirLock(FolderLock):
    """The package's :class:`FolderLock` on the work dir, held for a whole
    run.

    Runs (and the shards of one run) hold it shared; ``exclusive=True``
    (``--overwrite``) fails while any other run holds it, so a running job's
    state is never deleted under it; while exclusive, the holder is named in
    the lock's holder file (not state: :func:`clear_work_dir` leaves it,
    :meth:`share` removes it). The folder is created if needed.

    Raises:
        WorkDirInUseError: another run holds the lock (a
            :class:`ProposalStateError` and a ``FolderInUseError``).
    """

    def __init__(self, work_dir: str, exclusive: bool = False):
        self.work_dir = work_dir
        if exclusive:
            hint = ('--overwrite would delete its results. Stop that job '
                    'first, or use another --work-dir / --out')
        else:
            hint = ('it is being cleared by a run with --overwrite; wait '
                    'for it to start, or use another --work-dir / --out')
        try:
            super().__init__(work_dir, exclusive, what='work dir', hint=hint)
        except FolderInUseError as e:
            msg = str(e)
            if exclusive and ' is in use by ' in msg:
                msg = (f'work dir {work_dir} is in use by a running job; '
                       f'{hint}')
            raise WorkDirInUseError(msg) from None

    def share(self) -> None:
        """Downgrade an exclusive lock to shared (other shards may join);
        the holder file goes (shared holders are not named)."""
        was_exclusive = self.exclusive
        super().share()
        if was_exclusive:
            _remove_quietly(osp.join(self.folder, HOLDER_FILE))


def clear_work_dir(work_dir: str) -> int:
    """Delete the state files of a work dir (caller holds the exclusive
    :class:`WorkDirLock`); the folder itself stays. Returns files deleted.

    Raises:
        ProposalStateError: the folder holds other files (not a work dir:
            nothing is deleted).
    """
    # the lock's holder file belongs to the run that clears the folder
    names = sorted(n for n in os.listdir(work_dir) if n != HOLDER_FILE)
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


WRITTEN_FILE = 'written.json'


def _outputs(work_dir: str) -> Manifest:
    """The outputs this work dir wrote, with their content's digest."""
    return Manifest(work_dir, WRITTEN_FILE, tool=WRITER,
                    note='outputs this work dir wrote; a rerun replaces '
                    'only these, and only while unchanged')


def _legacy_written(work_dir: str) -> Optional[Dict[str, List[int]]]:
    """``written.json`` of the format before the manifest (``abs path ->
    [size, mtime_ns]``), or None."""
    try:
        with open(osp.join(work_dir, WRITTEN_FILE)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or 'files' in data:
        return None
    return data


def _unchanged(path: str, stamp: Any) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stamp == [st.st_size, st.st_mtime_ns]


def record_written(work_dir: str, out: str) -> None:
    """Remember that this work dir wrote ``out`` (with its digest)."""
    legacy = _legacy_written(work_dir)
    outputs = _outputs(work_dir)
    if legacy is not None:  # convert: keep the outputs still unchanged
        atomic_write_json(outputs.path, dict(tool=WRITER, files=[]),
                          indent=1, end='')
        kept = [p for p, stamp in legacy.items() if _unchanged(p, stamp)]
        outputs = _outputs(work_dir)
        outputs.record(kept)
    outputs.record([osp.abspath(out)])


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
    legacy = _legacy_written(work_dir)
    if legacy is not None:
        listed = osp.abspath(out) in legacy
        if _unchanged(out, legacy.get(osp.abspath(out))):
            return
    else:
        outputs = _outputs(work_dir)
        try:
            listed = outputs.lists(osp.abspath(out))
            if listed and not outputs.foreign([osp.abspath(out)]):
                return
        except FileExistsError as e:  # an unreadable written.json
            raise ProposalStateError(str(e)) from None
    why = ('was changed since this run wrote it' if listed else
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
        old = _read_meta(meta_path)
        problems = []
        if old.get('format') != WORK_FORMAT:
            problems.append(f'format {old.get("format")!r} != {WORK_FORMAT!r}')
        # a setting added after the work dir was made compares as None (the
        # behaviour before it existed)
        oc = dict({k: None for k in config}, **(old.get('config') or {}))
        if oc != config:
            problems.append(f'settings differ ({settings_diff(oc, config)})'
                            '; pass the old values to resume')
        if old.get('images_sha1') != meta['images_sha1']:
            problems.append(f'image list differs ({old.get("num_images")} '
                            f'images before, {len(entries)} now)')
        if problems:
            raise ProposalStateError(
                f'work dir {work_dir} belongs to another run: '
                + '; '.join(problems) + '. Use another --work-dir (or --out), '
                'or --overwrite to start over.')
    else:
        write_record(meta_path, meta, WRITER, _check_meta,
                     what='the meta.json of a proposal work dir',
                     hint='another --work-dir', indent=1, end='')
    images_path = osp.join(work_dir, 'images.json')
    if not osp.exists(images_path):
        atomic_write_text(images_path, json.dumps(
            [[e.id, e.file_name] for e in entries], separators=(',', ':')))


def _check_meta(obj: Any, path: str) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get('format'), str):
        raise ValueError(f'{path}: not the meta.json of a proposal work dir '
                         '(no "format")')


def _read_meta(meta_path: str) -> Dict[str, Any]:
    """The checked ``meta.json`` of a work dir."""
    try:
        return read_record(meta_path, _check_meta)
    except ValueError as e:
        raise ProposalStateError(
            f'{e}; use another --work-dir (or --out), or --overwrite to '
            'start over') from None


def load_work_dir(work_dir: str) -> Tuple[Dict[str, Any], List[ImageEntry]]:
    """``(meta, entries)`` of an existing work dir."""
    meta_path = osp.join(work_dir, 'meta.json')
    images_path = osp.join(work_dir, 'images.json')
    for p in (meta_path, images_path):
        if not osp.exists(p):
            raise ProposalStateError(
                f'{work_dir} is not a proposal work dir ({osp.basename(p)} '
                'is missing)')
    meta = _read_meta(meta_path)
    with open(images_path) as f:
        entries = [ImageEntry(int(i), str(n)) for i, n in json.load(f)]
    if entries_digest(entries) != meta.get('images_sha1'):
        raise ProposalStateError(
            f'{images_path} does not match {meta_path} (edited by hand?)')
    return meta, entries
