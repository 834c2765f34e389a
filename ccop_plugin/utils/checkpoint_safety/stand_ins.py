"""Validated reconstruction of the NumPy values and mmengine
``HistoryBuffer``s in a checkpoint's pickle (the allowlist besides torch's
own tensors and plain containers)."""
import contextlib
import pickle
import re
from typing import Any

import numpy as np

from .errors import REFUSED

# HistoryBuffer.__getstate__ stores its statistics methods, which protocol 2
# pickles as getattr(HistoryBuffer, name): only these names are returned
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

# A pickle names the NumPy / mmengine callables that rebuild its objects and
# hands them their state (REDUCE / BUILD). The real ``numpy.dtype`` accepts a
# state that sets arbitrary fields, offsets and flags (arrays then read
# memory they do not own), and ``HistoryBuffer.__setstate__`` writes a
# class-level registry. So while the plugin loads a file, those global names
# resolve to the stand-ins below: they accept only values that a genuine
# array / scalar / message-hub buffer has, build the real object themselves
# from those values, and :func:`_finish` swaps them in after unpickling.

# dtypes a weight file may hold: bool, int, uint, float, complex
_DTYPE_SPEC = re.compile(r'(b1|[iu][1248]|f[248]|c(8|16))\Z')


class RefusedByLoader(pickle.UnpicklingError):
    """A value in the pickle that safe loading does not rebuild."""

    def __init__(self, what: str):
        super().__init__(f'{REFUSED} {what}')


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, str):  # Python 2 pickles read with latin1
        data = data.encode('latin1')
    if not isinstance(data, bytes):
        raise RefusedByLoader(f'{what} data of type {type(data).__name__}')
    return data


class _DType:
    """``numpy.dtype`` while unpickling: a standard numeric dtype only."""
    __slots__ = ('value', 'built')

    def __new__(cls, spec=None, align=False, copy=True):
        if not (isinstance(spec, str) and _DTYPE_SPEC.match(spec)
                and isinstance(align, bool) and isinstance(copy, bool)):
            raise RefusedByLoader(
                f'numpy.dtype({spec!r}) (only bool, int, uint, float and '
                'complex dtypes are allowed)')
        self = object.__new__(cls)
        self.value, self.built = np.dtype(spec), False
        return self

    def __setstate__(self, state):
        base = self.value
        order = state[1] if isinstance(state, tuple) and \
            len(state) == 8 else None
        dtype = base.newbyteorder(order) if order in ('<', '>') else base
        if self.built or order not in ('<', '>', '|', '=') or \
                dtype.__reduce__()[2] != state:
            raise RefusedByLoader(
                f'a numpy.dtype state {state!r} for {base.str[1:]} (only '
                'a byte order may be set)')
        self.value, self.built = dtype, True


def _dtype_of(d: Any) -> np.dtype:
    if type(d) is not _DType or not d.built:
        raise RefusedByLoader(f'an array dtype of type {type(d).__name__}')
    return d.value


class _NdarrayName:
    """``numpy.ndarray`` while unpickling: only an argument of
    ``_reconstruct``; it cannot be instantiated."""

    def __new__(cls, *args):
        raise RefusedByLoader('numpy.ndarray(...) (arrays are rebuilt from '
                              'their pickled state only)')


class _ArrayState:
    """What ``_reconstruct`` returns: BUILD passes the array's state, from
    which the array is rebuilt after validation (``value``)."""
    __slots__ = ('value', )

    def __new__(cls):
        self = object.__new__(cls)
        self.value = None
        return self

    def __setstate__(self, state):
        if self.value is not None or not (isinstance(state, tuple)
                                          and len(state) == 5):
            raise RefusedByLoader(f'a NumPy array state {state!r:.80}')
        version, shape, dtype, fortran, raw = state
        dtype = _dtype_of(dtype)
        raw = _as_bytes(raw, 'NumPy array')
        if not (version == 1 and isinstance(shape, tuple) and all(
                type(n) is int and n >= 0 for n in shape)
                and isinstance(fortran, bool)):
            raise RefusedByLoader(f'a NumPy array state {state[:4]!r}')
        size = dtype.itemsize
        for n in shape:
            size *= n
        if size != len(raw):
            raise RefusedByLoader(
                f'a NumPy array of shape {shape} {dtype} with {len(raw)} '
                f'bytes of data (it needs {size})')
        arr = np.frombuffer(raw, dtype=dtype)
        self.value = arr.reshape(shape, order='F' if fortran else 'C').copy(
            order='F' if fortran else 'C')


def _reconstruct(subtype, shape, code):
    """``numpy...multiarray._reconstruct`` while unpickling."""
    if subtype is not _NdarrayName or shape != (0, ) or code not in (b'b',
                                                                    'b'):
        raise RefusedByLoader(
            f'_reconstruct({getattr(subtype, "__name__", subtype)}, '
            f'{shape!r:.40}, {code!r:.40}) (only plain NumPy arrays)')
    return _ArrayState()


def _scalar(dtype, data=None):
    """``numpy...multiarray.scalar`` while unpickling: a numeric scalar
    whose data has exactly its dtype's size."""
    dtype = _dtype_of(dtype)
    data = _as_bytes(data, 'NumPy scalar')
    if len(data) != dtype.itemsize:
        raise RefusedByLoader(f'a NumPy {dtype} scalar of {len(data)} bytes')
    return np.frombuffer(data, dtype=dtype)[0]


def _frombuffer(buf, dtype, shape, order):
    """``numpy...numeric._frombuffer`` (pickle protocol 5) while
    unpickling."""
    arr = _ArrayState()
    arr.__setstate__((1, shape, dtype, order == 'F', bytes(buf)))
    return arr.value


class _HistoryBufferState:
    """mmengine's ``HistoryBuffer`` while unpickling. Its own
    ``__setstate__`` writes the file's ``statistics_methods`` into a
    class-level registry; here the buffer is rebuilt with
    ``HistoryBuffer(log_history, count_history, max_length)`` from validated
    values and the file's ``statistics_methods`` are dropped."""
    __slots__ = ('value', )
    FIELDS = {'max_length', '_log_history', '_count_history'}

    def __new__(cls, *args):
        if args:
            raise RefusedByLoader('HistoryBuffer(...) arguments')
        self = object.__new__(cls)
        self.value = None
        return self

    def __setstate__(self, state):
        from mmengine.logging import HistoryBuffer
        if self.value is not None or not isinstance(state, dict) or \
                set(state) - {'statistics_methods'} != self.FIELDS:
            keys = sorted(state) if isinstance(state, dict) else state
            raise RefusedByLoader(f'a HistoryBuffer state {keys!r:.80}')
        logs, counts = (_finish(state[k], {})
                        for k in ('_log_history', '_count_history'))
        length = state['max_length']
        for a in (logs, counts):
            if not (isinstance(a, np.ndarray) and a.ndim == 1
                    and a.dtype.kind in 'biuf'):
                raise RefusedByLoader('a HistoryBuffer whose history is not '
                                      'a 1-d numeric NumPy array')
        if not (type(length) is int and 0 < length
                and len(logs) == len(counts) <= length):
            raise RefusedByLoader(
                f'a HistoryBuffer of {len(logs)} values, {len(counts)} '
                f'counts and max_length {length!r:.40}')
        self.value = HistoryBuffer(logs, counts, length)


def _getattr(obj: Any, name: str) -> str:
    """``getattr`` while unpickling: only ``HistoryBuffer``'s statistics
    methods (a pickle references them as ``getattr(HistoryBuffer, 'min')``);
    they are returned as names, which :class:`_HistoryBufferState` drops."""
    if obj is _HistoryBufferState and name in HISTORY_BUFFER_STATISTICS:
        return f'HistoryBuffer.{name}'
    raise RefusedByLoader(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, '
        f'{name!r:.40}) (only HistoryBuffer statistics methods)')


def _finish(obj: Any, memo: dict) -> Any:
    """Replace the stand-ins by the objects they rebuilt (in place in dicts
    and lists, shared references kept)."""
    key = id(obj)
    if key in memo:
        return memo[key]
    kind = type(obj)
    if kind in (_ArrayState, _HistoryBufferState):
        if obj.value is None:
            raise RefusedByLoader(f'a {kind.__name__[1:-5]} without state')
        out = obj.value
    elif kind is _DType:
        out = _dtype_of(obj)
    elif isinstance(obj, dict):
        memo[key] = obj
        for k, v in list(obj.items()):
            if type(k) in _STAND_INS:
                raise RefusedByLoader('a NumPy value as a dict key')
            obj[k] = _finish(v, memo)
        return obj
    elif kind is list:
        memo[key] = obj
        obj[:] = [_finish(v, memo) for v in obj]
        return obj
    elif kind is tuple:
        out = tuple(_finish(v, memo) for v in obj)
    elif kind in (set, frozenset):
        if any(type(v) in _STAND_INS for v in obj):
            raise RefusedByLoader('a NumPy value in a set')
        out = obj
    else:
        out = obj
    memo[key] = out
    return out


_STAND_INS = (_DType, _ArrayState, _HistoryBufferState)
_MULTIARRAY = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMERIC = ('numpy.core.numeric', 'numpy._core.numeric')
_HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'


def _stand_in_globals() -> dict:
    """Name in a pickle -> what the plugin's loaders build for it (the
    allowlist besides torch's own tensors and plain containers). The
    ``numpy.core`` names are how NumPy 1 wrote the same functions."""
    names = {'numpy.dtype': _DType, 'numpy.ndarray': _NdarrayName,
             _HISTORY_BUFFER: _HistoryBufferState,
             'builtins.getattr': _getattr,
             # an empty array (a HistoryBuffer never updated) pickles its
             # empty buffer as bytes() under protocol 2: data, no code
             'builtins.bytes': bytes,
             # not in genuine pickles; listed so that BUILD reaches its
             # validating __setstate__
             f'{__package__}._ArrayState': _ArrayState}
    for mod in _MULTIARRAY:
        names[f'{mod}._reconstruct'] = _reconstruct
        names[f'{mod}.scalar'] = _scalar
    return names


@contextlib.contextmanager
def _allowlist():
    """While a plugin loader runs, torch's restricted unpickler resolves the
    names of :func:`_stand_in_globals` to the stand-ins, and nothing else
    from NumPy or mmengine (entries that other code registered under those
    modules are set aside meanwhile, then restored)."""
    from torch.serialization import (
        add_safe_globals,
        clear_safe_globals,
        get_safe_globals,
    )
    saved = get_safe_globals()

    def foreign(g):
        name = g[1] if isinstance(g, tuple) else \
            f'{getattr(g, "__module__", "")}.{getattr(g, "__qualname__", "")}'
        return not name.startswith(('numpy', 'mmengine', 'builtins.'))

    clear_safe_globals()
    add_safe_globals([g for g in saved if foreign(g)] +
                     [(v, k) for k, v in _stand_in_globals().items()])
    try:
        yield
    finally:
        clear_safe_globals()
        add_safe_globals(saved)
