"""Safe loading of pickled weight files (Detectron2 ``.pkl``): NumPy
arrays / scalars of numeric dtypes and plain containers only."""
import codecs
import collections
import pickle
import zipfile
from typing import Any

from .errors import (
    TRUST_HINT,
    UntrustedCheckpointError,
    _notice_trusted,
    checkpoints_trusted,
    refusal_reason,
)
from .stand_ins import (
    _NUMERIC,
    _finish,
    _frombuffer,
    _getattr,
    _HistoryBufferState,
    _stand_in_globals,
)
from .torch_files import _check_file, _unreadable


class _NumpyWeightsUnpickler(pickle.Unpickler):
    """Builds only NumPy arrays / scalars (through the validating
    stand-ins) and plain containers."""
    PLAIN = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('_codecs', 'encode'): codecs.encode,  # bytes in protocol 2
        ('builtins', 'bytes'): bytes,  # empty bytes in protocol 2
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
    }

    def find_class(self, module, name):
        mod = {'__builtin__': 'builtins'}.get(module, module)
        found = self.PLAIN.get((mod, name))
        if found is None:
            found = _stand_in_globals().get(f'{mod}.{name}')
        if found is None and mod in _NUMERIC and name == '_frombuffer':
            found = _frombuffer  # pickle protocol 5
        if found is None or found in (_HistoryBufferState, _getattr):
            raise pickle.UnpicklingError(
                f'Unsupported global: GLOBAL {mod}.{name} was not an '
                'allowed global')
        return found


def read_weights_pickle(f) -> Any:
    """Unpickle an open weight file (Detectron2 ``.pkl``) with the
    validated reconstruction; refusals raise :class:`pickle.UnpicklingError`
    (see :func:`refusal_reason`)."""
    return _finish(_NumpyWeightsUnpickler(f, encoding='latin1').load(), {})


def load_weights_pickle(path: str) -> Any:
    """Load a pickled weight file (Detectron2 ``.pkl``) that may hold only
    NumPy arrays / scalars of standard numeric dtypes and plain containers;
    see :func:`load_checkpoint_file` for the errors and the opt-in."""
    _check_file(path)
    try:
        with open(path, 'rb') as f:
            return read_weights_pickle(f)
    except pickle.UnpicklingError as e:
        reason = refusal_reason(e)
        if reason is None:
            raise _unreadable(path, 'pickle', e) from None
        if not checkpoints_trusted():
            raise UntrustedCheckpointError(
                f'{path}: refused to load: the pickle contains {reason}, '
                'which a weight file does not need (only NumPy arrays of '
                'numeric dtypes and plain containers are allowed; it could '
                f'run code or corrupt memory); {TRUST_HINT}'
            ) from None
        _notice_trusted(path, reason)
        with open(path, 'rb') as f:
            return pickle.load(f, encoding='latin1')
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        raise _unreadable(path, 'pickle', e) from None


def _detectron2_weights(path: str) -> bool:
    """Whether ``path`` is a pickle of Detectron2 weights
    (``{'model': {name: array}}``) that the converters read."""
    if zipfile.is_zipfile(path):
        return False
    try:
        with open(path, 'rb') as f:
            obj = read_weights_pickle(f)
    except Exception:
        return False
    return isinstance(obj, dict) and isinstance(obj.get('model'), dict)
