"""Guards for training into a work dir: never clobber another run's
checkpoints, and resume only from an intact checkpoint.

mmengine writes ``iter_N.pth`` / ``epoch_N.pth`` and ``last_checkpoint`` (the
path of the newest one) into the work dir. :func:`check_work_dir` refuses a
fresh run into a work dir that already holds checkpoints (it would overwrite
them and re-point ``last_checkpoint``); :func:`find_resume_checkpoint` picks
the checkpoint to resume from, skipping a truncated or corrupt newest one
with a warning. ``tools/train.py`` is the command-line face of both.

One run per work dir: :func:`lock_work_dir` holds an exclusive
:class:`~ccop_plugin.utils.folder_lock.FolderLock` on it for the whole run
(``tools/train.py`` before it builds the Runner; the ``WorkDirLockHook``
for ``mim train``), so a second run started in the same work dir is refused
with one line naming the holder instead of overwriting the first's
checkpoints.
"""
import json
import os
import os.path as osp
import pickle
import re
import socket
import threading
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

from ..utils.folder_lock import HOLDER_FILE, FolderInUseError, FolderLock

LAST = 'last_checkpoint'
_CKPT = re.compile(r'(iter|epoch)_(\d+)\.pth$')


class WorkDirError(RuntimeError):
    """A work dir or checkpoint problem; the message is one line."""


def list_checkpoints(work_dir: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` in ``work_dir``, oldest first."""
    if not osp.isdir(work_dir):
        return []
    found = []
    for name in os.listdir(work_dir):
        m = _CKPT.fullmatch(name)
        if m and osp.isfile(osp.join(work_dir, name)):
            found.append((int(m.group(2)), m.group(1), name))
    return [osp.join(work_dir, n) for _, _, n in sorted(found)]


def check_work_dir(work_dir: str, resume: bool = False,
                   overwrite: bool = False) -> None:
    """Refuse to start a new run where another run left checkpoints.

    Raises:
        WorkDirError: ``work_dir`` holds checkpoints (or ``last_checkpoint``)
            and neither ``resume`` nor ``overwrite`` is set.
    """
    if resume or overwrite:
        return
    ckpts = list_checkpoints(work_dir)
    last = osp.join(work_dir, LAST)
    if not ckpts and not osp.isfile(last):
        return
    names = ', '.join(osp.basename(p) for p in ckpts[-3:]) or LAST
    more = f' and {len(ckpts) - 3} more' if len(ckpts) > 3 else ''
    raise WorkDirError(
        f'{work_dir} already holds checkpoints of another run '
        f'({names}{more}); '
        'a new run would overwrite them and re-point last_checkpoint. Pass '
        '--resume to continue that run, --overwrite-work-dir to replace it, '
        'or choose another --work-dir')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be loaded (truncated, corrupt, missing), or None.

    A zip checkpoint (what ``torch.save`` writes) is checked without
    unpickling anything: its directory must be readable and every member's
    CRC must match. Any other file is test-loaded on the CPU with
    ``weights_only=True`` (a file that is whole but holds other objects than
    tensors and plain types counts as intact).
    """
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file'
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            return f'unreadable zip ({e})'
        return None if bad is None else f'corrupt member {bad}'
    import torch
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        if 'weights_only' in str(e) or 'Weights only' in str(e):
            return None  # complete, just more than weights
        return f'cannot unpickle ({str(e).splitlines()[0]})'
    except (EOFError, RuntimeError, ValueError, OSError) as e:
        return f'cannot load ({str(e).splitlines()[0] if str(e) else e!r})'
    return None


def _read_last(work_dir: str) -> Optional[str]:
    last = osp.join(work_dir, LAST)
    if not osp.isfile(last):
        return None
    with open(last) as f:
        path = f.read().strip()
    if path and not osp.isabs(path) and not osp.exists(path):
        path = osp.join(work_dir, osp.basename(path))
    return path or None


def find_resume_checkpoint(
        work_dir: str,
        warn: Callable[[str], None] = print) -> Optional[str]:
    """The newest intact checkpoint of ``work_dir`` to resume from.

    Candidates: the file ``last_checkpoint`` names, then ``iter_N.pth`` /
    ``epoch_N.pth`` newest first. A truncated or corrupt candidate is skipped
    with a warning (passed to ``warn``) naming it and the one used instead;
    nothing is deleted (the resumed run rewrites that file when it gets
    there).

    Returns:
        str or None: The checkpoint, or None when the work dir has none
        (a new run starts).

    Raises:
        WorkDirError: checkpoints exist but none of them is intact.
    """
    candidates = []
    last = _read_last(work_dir)
    if last is not None:
        candidates.append(last)
    for p in reversed(list_checkpoints(work_dir)):
        if all(osp.abspath(p) != osp.abspath(c) for c in candidates):
            candidates.append(p)
    if not candidates:
        return None
    broken: List[Tuple[str, str]] = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if broken:
                skipped = '; '.join(f'{p} ({why})' for p, why in broken)
                warn(f'WARNING: cannot resume from {skipped}; resuming from '
                     f'the previous intact checkpoint {path} instead (the '
                     'skipped iterations are trained again)')
            return path
        broken.append((path, problem))
    p, why = broken[0]
    raise WorkDirError(
        f'{p}: {why}, and no earlier intact checkpoint in {work_dir} '
        f'({len(broken)} checked); remove the broken files to start afresh, '
        'or pass --resume <checkpoint> with an intact one')


def check_resume_file(path: str) -> str:
    """An explicitly named checkpoint must be intact (no fallback)."""
    problem = checkpoint_problem(path)
    if problem is not None:
        raise WorkDirError(f'{path}: cannot resume from it: {problem}')
    return path


def plan_training_start(work_dir: str, resume: Optional[str] = None,
                        overwrite: bool = False,
                        warn: Callable[[str], None] = print
                        ) -> Tuple[bool, Optional[str]]:
    """``(cfg.resume, cfg.load_from)`` for a run into ``work_dir``.

    Args:
        resume: None (a new run), ``'auto'`` (the newest intact checkpoint
            of ``work_dir``) or a checkpoint path.
        overwrite: Start a new run even if ``work_dir`` holds checkpoints.

    Raises:
        WorkDirError: see :func:`check_work_dir`,
            :func:`find_resume_checkpoint`, :func:`check_resume_file`.
    """
    if resume is None:
        check_work_dir(work_dir, overwrite=overwrite)
        return False, None
    if resume == 'auto':
        # None: nothing to resume, mmengine starts a new run
        return True, find_resume_checkpoint(work_dir, warn=warn)
    return True, check_resume_file(resume)


# realpath -> the lock this process holds on it (re-entrant: the hook of a
# run started by tools/train.py finds the tool's lock)
_HELD: Dict[str, FolderLock] = {}
_HELD_LOCK = threading.Lock()


def global_rank() -> int:
    """This process's rank among the processes of a (distributed) run, read
    from the launchers' environment (0 when not distributed)."""
    for var in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def work_dir_lock_held(work_dir: str) -> bool:
    """Whether this process holds ``work_dir`` (:func:`lock_work_dir`)."""
    with _HELD_LOCK:
        lock = _HELD.get(osp.realpath(work_dir))
        return lock is not None and lock.held


def lock_work_dir(work_dir: str) -> Optional[FolderLock]:
    """Hold ``work_dir`` (created if needed) for this run.

    Only the process of global rank 0 takes the lock (the other ranks of a
    distributed run write nothing of their own there). Re-entrant within a
    process: a second call returns the lock already held, and a folder this
    process holds with a :class:`FolderLock` of its own (a job running the
    training in-process) is not refused (None is returned).

    Returns:
        FolderLock or None: The lock (None on ranks other than 0); close it
        when the run ends (the kernel releases it when the process exits).

    Raises:
        FolderInUseError: another process (another run) holds the work dir;
            one line naming it and the holder.
    """
    if global_rank() != 0:
        return None
    key = osp.realpath(work_dir)
    with _HELD_LOCK:
        lock = _HELD.get(key)
        if lock is not None and lock.held:
            return lock
        try:
            lock = FolderLock(
                work_dir, what='work dir',
                hint='wait for that run to finish (or stop it), or choose '
                'another --work-dir')
        except FolderInUseError:
            if _holder_is_this_process(work_dir):
                return None  # e.g. a job that runs this training in-process
            raise
        _HELD[key] = lock
        return lock


def _holder_is_this_process(work_dir: str) -> bool:
    """Whether the exclusive holder described in the work dir is this very
    process (it took a :class:`FolderLock` of its own on the folder)."""
    try:
        with open(osp.join(work_dir, HOLDER_FILE), encoding='utf-8') as f:
            info = json.load(f)
        return (int(info['pid']) == os.getpid()
                and info.get('host') == socket.gethostname())
    except (OSError, ValueError, KeyError, TypeError):
        return False
