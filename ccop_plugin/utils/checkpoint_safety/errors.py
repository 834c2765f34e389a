"""Errors of safe checkpoint loading, the opt-in for trusted files, and the
one line a refusal is reported as."""
import os
import pickle
import re
import sys
from typing import Optional

TRUST_ENV = 'CCOP_TRUST_CHECKPOINTS'

# the opt-in that exists wherever a refusal is shown (mim test included);
# tools with a --trust-checkpoint option add it (error_line)
TRUST_HINT = f'if you trust this file, rerun with {TRUST_ENV}=1 set'

# what the plugin's stand-ins say when they refuse a value
REFUSED = 'safe loading refuses'

_trusted_by_call = False


class CheckpointError(ValueError):
    """A checkpoint file cannot be loaded; the message is one line that
    names the file."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file's pickle needs something outside the allowlist (it could run
    code); loading it needs the explicit opt-in."""


def error_line(exc: BaseException,
               flag: Optional[str] = '--trust-checkpoint') -> str:
    """The one line a tool prints for a checkpoint error; a refusal also
    names the tool's own opt-in ``flag`` (None: the tool has none)."""
    line = f'error: {exc}'
    if flag and isinstance(exc, UntrustedCheckpointError):
        line += f' (or pass {flag})'
    return line


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
             'Can only create new object', 'is blocked', REFUSED)


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
    line = line.split('WeightsUnpickler error:')[-1].strip()
    if line.startswith(REFUSED):
        return line[len(REFUSED):].strip()
    return line.split('. Please')[0].rstrip('.')


def _refused(name: str, reason: str) -> 'UntrustedCheckpointError':
    return UntrustedCheckpointError(
        f'{name}: refused to load: the checkpoint contains {reason}, which '
        'safe loading does not allow (it could run code or corrupt memory); '
        f'{TRUST_HINT}')


def _excepthook(kind, value, tb, _previous=None):
    """An uncaught :class:`CheckpointError` (e.g. ``mim test`` with a
    refused checkpoint) is reported as its one line, not as a traceback."""
    if isinstance(value, CheckpointError):
        print(f'error: {value}', file=sys.stderr, flush=True)
        return
    (_previous or sys.__excepthook__)(kind, value, tb)


def install_excepthook() -> bool:
    """Report uncaught :class:`CheckpointError` in one line (other
    exceptions go to the previous hook). Returns whether it was installed
    now (idempotent)."""
    if getattr(sys.excepthook, '_ccop_checkpoint_hook', False):
        return False
    previous = sys.excepthook

    def hook(kind, value, tb):
        _excepthook(kind, value, tb, previous)

    hook._ccop_checkpoint_hook = True
    sys.excepthook = hook
    return True
