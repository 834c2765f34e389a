"""Loading checkpoint files without running code hidden in their pickles.

Checkpoints are pickles: a file whose pickle names a function (``exec``,
``os.system`` ...) runs it when loaded with plain ``pickle`` or
``torch.load(weights_only=False)``. PyTorch >= 2.6 loads with
``weights_only=True`` (a restricted unpickler) by default; this module keeps
it that way for everything the plugin loads and lets mmengine's checkpoints
through that restricted unpickler:

* :func:`register_safe_globals` (called by ``import ccop_plugin``) allowlists,
  with :func:`torch.serialization.add_safe_globals`, exactly what the
  checkpoints of this project contain besides tensors (measured on the
  pre-training, fine-tuning and converted checkpoints of every config, see
  ``docs/transfer.md``): mmengine's ``HistoryBuffer`` (the message hub's
  logs), NumPy's array reconstruction, ``ndarray``, ``dtype``, ``scalar`` and
  the dtype classes ``Float64DType`` / ``Int64DType``, and ``getattr`` --
  replaced by :func:`_history_buffer_getattr`, which only returns
  ``HistoryBuffer.min/max/current/mean`` (a pickle references those methods
  as ``getattr(HistoryBuffer, 'min')``; a general ``getattr`` would hand the
  pickle any attribute of any object it can reach).
* :func:`patch_mmengine_local_loader` makes mmengine's loader of local files
  (``--resume``, ``load_from``, ``Pretrained`` init) load with
  ``weights_only=True`` explicitly and turn a refusal into one line
  (:class:`UntrustedCheckpointError`).
* :func:`load_checkpoint_file` / :func:`load_weights_pickle` are the
  converters' readers: torch files with ``weights_only=True``; Detectron2
  ``.pkl`` files with an unpickler that builds only NumPy arrays / scalars
  and plain containers. Unreadable files raise :class:`CheckpointError` with
  one line naming the file.

Nothing here sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: child processes keep
torch's safe default. The one opt-in for trusted legacy files is the
environment variable ``CCOP_TRUST_CHECKPOINTS=1`` (or the tools'
``--trust-checkpoint``, :func:`trust_checkpoints`); a file is then loaded in
full only after the safe load refused it, and a line says so.
"""
import os
import os.path as osp
import pickle
import re
import sys
from typing import Any, Optional

import numpy as np
import torch

TRUST_ENV = 'CCOP_TRUST_CHECKPOINTS'
TRUST_HINT = (f'if you trust this file, rerun with --trust-checkpoint or '
              f'{TRUST_ENV}=1')

# HistoryBuffer.__getstate__ stores its statistics methods, which protocol 2
# pickles as getattr(HistoryBuffer, name): only these names are returned
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

_trusted_by_call = False


class CheckpointError(ValueError):
    """A checkpoint file cannot be loaded; the message is one line that
    names the file."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file's pickle needs something outside the allowlist (it could run
    code); loading it needs the explicit opt-in."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as seen by the restricted unpickler (allowlisted under
    the name ``builtins.getattr``): only ``HistoryBuffer``'s statistics
    methods."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) '
        '(only HistoryBuffer statistics methods are allowed)')


def checkpoint_safe_globals() -> list:
    """What mmengine checkpoints need besides tensors (the allowlist).

    Entries are objects or ``(object, name in the pickle)`` pairs for
    :func:`torch.serialization.add_safe_globals`. The ``numpy.core`` names
    are how NumPy 1 wrote the same functions (checkpoints written before
    NumPy 2).
    """
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else \
        np.core.multiarray
    return [
        HistoryBuffer,
        multiarray._reconstruct,
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        multiarray.scalar,
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float64)),  # numpy.dtypes.Float64DType
        type(np.dtype(np.int64)),  # numpy.dtypes.Int64DType
        (_history_buffer_getattr, 'builtins.getattr'),
        # an empty NumPy array (e.g. a HistoryBuffer never updated) pickles
        # its empty buffer as bytes() under protocol 2: builds data, no code
        bytes,
    ]


def register_safe_globals() -> bool:
    """Allowlist :func:`checkpoint_safe_globals` for safe ``torch.load``.

    Returns:
        bool: Whether anything was added (idempotent).
    """
    from torch.serialization import add_safe_globals, get_safe_globals
    present = get_safe_globals()
    new = [g for g in checkpoint_safe_globals() if g not in present]
    if new:
        add_safe_globals(new)
    return bool(new)


def trust_checkpoints(enable: bool = True) -> None:
    """Opt in (for this process only) to loading files that the safe loader
    refuses, as ``CCOP_TRUST_CHECKPOINTS=1`` does; used by the tools'
    ``--trust-checkpoint``."""
    global _trusted_by_call
    _trusted_by_call = bool(enable)


def checkpoints_trusted() -> bool:
    """Whether the opt-in is on (:func:`trust_checkpoints` or the
    environment variable ``CCOP_TRUST_CHECKPOINTS`` set to 1/true/yes)."""
    return _trusted_by_call or os.environ.get(TRUST_ENV, '').strip().lower() \
        in ('1', 'true', 'yes')


def _notice_trusted(path: str, reason: str) -> None:
    print(f'{TRUST_ENV}/--trust-checkpoint: loading {path} with full '
          f'unpickling although it contains {reason}: only for files you '
          'trust', file=sys.stderr, flush=True)


_REFUSALS = ('Unsupported global', 'unrecognized function', 'Can only build',
             'Can only create new object', 'is blocked',
             'only HistoryBuffer statistics methods')


def refusal_reason(exc: BaseException) -> Optional[str]:
    """What the restricted unpickler refused, or None when ``exc`` is not a
    refusal (e.g. a corrupt file)."""
    msg = str(exc)
    if not any(r in msg for r in _REFUSALS):
        return None
    m = re.search(r'GLOBAL (\S+) (was not an allowed global|whose module)',
                  msg)
    if m:
        return f'a reference to {m.group(1)}'
    line = next(ln for ln in msg.splitlines()
                if any(r in ln for r in _REFUSALS))
    line = line.split('WeightsUnpickler error:')[-1]
    return line.strip().split('. Please')[0].rstrip('.')


def torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)``; a refused file raises
    :class:`UntrustedCheckpointError`, or is loaded in full (with a notice)
    under the opt-in. Other errors pass through unchanged."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        reason = refusal_reason(e)
        if reason is None:
            raise
        if not checkpoints_trusted():
            raise UntrustedCheckpointError(
                f'{path}: refused to load: the checkpoint contains {reason}, '
                'which safe loading does not allow (it could run code); '
                f'{TRUST_HINT}') from None
        _notice_trusted(path, reason)
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


class _NumpyWeightsUnpickler(pickle.Unpickler):
    """Builds only NumPy arrays / scalars / dtypes and plain containers."""
    ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy.core.multiarray', 'scalar'),
        ('numpy._core.multiarray', 'scalar'),
        ('numpy.core.numeric', '_frombuffer'),  # pickle protocol 5
        ('numpy._core.numeric', '_frombuffer'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('collections', 'OrderedDict'),
        ('_codecs', 'encode'),  # bytes in protocol 2
        ('builtins', 'bytes'),  # empty bytes in protocol 2
        ('builtins', 'set'),
        ('builtins', 'frozenset'),
    }

    def find_class(self, module, name):
        mod = {'__builtin__': 'builtins'}.get(module, module)
        if (mod, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL {mod}.{name} was not an allowed '
            'global')


def load_weights_pickle(path: str) -> Any:
    """Load a pickled weight file (Detectron2 ``.pkl``) that may hold only
    NumPy arrays / scalars and plain containers; see
    :func:`load_checkpoint_file` for the errors and the opt-in."""
    _check_file(path)
    try:
        with open(path, 'rb') as f:
            return _NumpyWeightsUnpickler(f, encoding='latin1').load()
    except pickle.UnpicklingError as e:
        reason = refusal_reason(e)
        if reason is None:
            raise _unreadable(path, 'pickle', e) from None
        if not checkpoints_trusted():
            raise UntrustedCheckpointError(
                f'{path}: refused to load: the pickle contains {reason}, '
                'which a weight file does not need (only NumPy arrays and '
                'plain containers are allowed; it could run code); '
                f'{TRUST_HINT}'
            ) from None
        _notice_trusted(path, reason)
        with open(path, 'rb') as f:
            return pickle.load(f, encoding='latin1')
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        raise _unreadable(path, 'pickle', e) from None


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader of local checkpoint files, loading safely."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch_load(filename, map_location)


def patch_mmengine_local_loader() -> bool:
    """Register :func:`load_from_local` as mmengine's loader of local paths
    (``CheckpointLoader`` scheme ``''``; used by resume, ``load_from`` and
    ``Pretrained`` init).

    Returns:
        bool: Whether it was registered now (idempotent).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_local:
        return False
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    return True
