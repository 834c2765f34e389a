"""Safe loading of PyTorch checkpoint files (``torch.load`` with
``weights_only=True`` and the validated stand-ins)."""
import os.path as osp
import pickle
import re
from typing import Any, Optional

import torch

from .errors import (
    CheckpointError,
    _notice_trusted,
    _refused,
    checkpoints_trusted,
    refusal_reason,
)
from .stand_ins import _allowlist, _finish


def torch_load(path: Any, map_location: Any = 'cpu',
               name: Optional[str] = None) -> Any:
    """``torch.load(weights_only=True)`` with the validated NumPy /
    HistoryBuffer reconstruction; a refused file raises
    :class:`UntrustedCheckpointError` naming ``name`` (default: ``path``),
    or is loaded in full (with a notice) under the opt-in. Other errors pass
    through unchanged.

    What it returns holds only tensors (and torch's own types), plain
    containers and scalars, numeric NumPy arrays / scalars of standard
    dtypes and rebuilt ``HistoryBuffer`` objects.
    """
    name = name or (path if isinstance(path, str) else 'checkpoint')
    try:
        with _allowlist():
            obj = torch.load(path, map_location=map_location,
                             weights_only=True)
        return _finish(obj, {})
    except pickle.UnpicklingError as e:
        reason = refusal_reason(e)
        if reason is None:
            raise
        if not checkpoints_trusted():
            raise _refused(name, reason) from None
        _notice_trusted(name, reason)
        if hasattr(path, 'seek'):
            path.seek(0)
        return torch.load(path, map_location=map_location, weights_only=False)


def _check_file(path: str) -> None:
    if not osp.exists(path):
        raise FileNotFoundError(f'{path}: no such file')
    if osp.isdir(path):
        raise CheckpointError(f'{path}: is a directory, not a checkpoint file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file, not a checkpoint')


def _unreadable(path: str, kind: str, e: BaseException) -> CheckpointError:
    msg = str(e)
    m = re.search(r'WeightsUnpickler error:\s*(\S.*)', msg, re.S)
    if m:  # torch's long message around the restricted unpickler's one
        msg = m.group(1)
    detail = (msg.strip().splitlines() or [''])[0]
    detail = detail.split('. This is an internal')[0][:120]
    detail = f'{type(e).__name__}: {detail}' if detail else type(e).__name__
    return CheckpointError(f'{path}: not a readable {kind} (truncated or '
                           f'corrupt? {detail})')


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """Load a torch checkpoint file safely (:func:`torch_load`).

    Raises:
        FileNotFoundError: No such file.
        UntrustedCheckpointError: The file needs more than the allowlist.
        CheckpointError: Directory, empty, truncated or not a checkpoint.
    """
    _check_file(path)
    try:
        return torch_load(path, map_location)
    except CheckpointError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # zip / pickle / EOF errors of a damaged file
        raise _unreadable(path, 'PyTorch checkpoint', e) from None
