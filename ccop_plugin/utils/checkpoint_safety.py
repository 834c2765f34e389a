"""Loading checkpoint files without running code hidden in their pickles.

Checkpoints are pickles: a file whose pickle names a function (``exec``,
``os.system`` ...) runs it when loaded with plain ``pickle`` or
``torch.load(weights_only=False)``. PyTorch >= 2.6 loads with
``weights_only=True`` (a restricted unpickler) by default; this module (the
one owner of the allowlist) keeps it that way for everything the plugin and
mmengine load, and lets mmengine's checkpoints through without handing their
values to NumPy's or mmengine's own rebuilding code:

* while one of its loaders runs (:func:`_allowlist`), the names a checkpoint
  uses besides tensors (:func:`_stand_in_globals`: ``numpy.dtype``,
  ``_reconstruct``, ``ndarray``, ``scalar``, mmengine's ``HistoryBuffer``,
  ``getattr``, ``bytes``) resolve to stand-ins that accept only the values
  a genuine array / scalar / message-hub buffer has and build the real
  object themselves; :func:`_finish` swaps them in. A loaded file holds only
  tensors, plain containers, numeric NumPy arrays / scalars of standard
  dtypes and freshly built ``HistoryBuffer``s, and cannot change anything
  outside the returned object (no crafted dtype states, no statistics
  methods written into ``HistoryBuffer``'s class-level registry).
* :func:`patch_mmengine_loaders` (called by ``import ccop_plugin``) makes
  every scheme of mmengine's ``CheckpointLoader`` load that way: local files
  (``--resume``, ``load_from``, ``Pretrained`` init, ``mim test``), the URL
  schemes (:func:`load_url`: what ``torch.hub`` downloads, then the same
  loader) and the rest (``torch.load`` as mmengine's checkpoint module sees
  it). A refusal is :class:`UntrustedCheckpointError`, one line.
* :func:`load_checkpoint_file` / :func:`load_weights_pickle` are the
  converters' (probe's, heat-map proposals') readers: torch files as above;
  Detectron2 ``.pkl`` files with an unpickler that builds only the same
  NumPy values and plain containers. Unreadable files raise
  :class:`CheckpointError` with one line naming the file.
* :func:`install_excepthook` (called by ``import ccop_plugin``) prints an
  uncaught :class:`CheckpointError` (e.g. under ``mim test``) as its line.

Nothing here sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: child processes keep
torch's safe default, and plain ``torch.load`` keeps torch's own allowlist.
The one opt-in for trusted legacy files is the environment variable
``CCOP_TRUST_CHECKPOINTS=1`` (or the tools' ``--trust-checkpoint``,
:func:`trust_checkpoints`); a file is then loaded in full only after the
safe load refused it, and a line says so.
"""
import codecs
import collections
import contextlib
import os
import os.path as osp
import pickle
import re
import sys
import zipfile
from typing import Any, Optional

import numpy as np
import torch

TRUST_ENV = 'CCOP_TRUST_CHECKPOINTS'

# HistoryBuffer.__getstate__ stores its statistics methods, which protocol 2
# pickles as getattr(HistoryBuffer, name): only these names are returned
# the opt-in that exists wherever a refusal is shown (mim test included);
# tools with a --trust-checkpoint option add it (error_line)
TRUST_HINT = f'if you trust this file, rerun with {TRUST_ENV}=1 set'

HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

_trusted_by_call = False


class CheckpointError(ValueError):
    """A checkpoint file cannot be loaded; the message is one line that
    names the file."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file's pickle needs something outside the allowlist (it could run
    code); loading it needs the explicit opt-in."""


# --- validated reconstruction -------------------------------------------
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
        super().__init__(f'{_REFUSED} {what}')


_REFUSED = 'safe loading refuses'


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
             f'{__name__}._ArrayState': _ArrayState}
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
             'Can only create new object', 'is blocked', _REFUSED)


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
    if line.startswith(_REFUSED):
        return line[len(_REFUSED):].strip()
    return line.split('. Please')[0].rstrip('.')


def _refused(name: str, reason: str) -> 'UntrustedCheckpointError':
    return UntrustedCheckpointError(
        f'{name}: refused to load: the checkpoint contains {reason}, which '
        'safe loading does not allow (it could run code or corrupt memory); '
        f'{TRUST_HINT}')


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


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader of local checkpoint files, loading safely."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch_load(filename, map_location)
    except (RuntimeError, pickle.UnpicklingError) as e:
        if isinstance(e, CheckpointError) or \
                not _detectron2_weights(filename):
            raise
        raise CheckpointError(
            f'{filename}: a Detectron2 weight file (pickled NumPy arrays), '
            'not an mmengine/PyTorch checkpoint, so load_from / resume / '
            'Pretrained cannot read it: convert it first (python '
            f'tools/convert_ccop_to_mmdet.py {filename} out.pth) and load '
            'out.pth') from None


def _hub_file(url: str, model_dir: Optional[str],
              file_name: Optional[str]) -> str:
    from urllib.parse import urlparse
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir,
                    file_name or osp.basename(urlparse(url).path))


def load_url(url: str, model_dir: Optional[str] = None,
             map_location: Any = None, progress: bool = True,
             check_hash: bool = False, file_name: Optional[str] = None,
             weights_only: bool = True) -> Any:
    """``torch.hub.load_state_dict_from_url`` (mmengine's ``load_url``: the
    ``http(s)://``, ``torchvision://``, ``modelzoo://``, ``open-mmlab://``
    and ``mmcls://`` schemes) downloading as it does into
    ``$TORCH_HOME/hub/checkpoints`` but loading with :func:`torch_load`;
    ``weights_only`` is accepted and ignored (always safe)."""
    cached = _hub_file(url, model_dir, file_name)
    if not osp.exists(cached):
        os.makedirs(osp.dirname(cached), exist_ok=True)
        prefix = None
        if check_hash:
            m = torch.hub.HASH_REGEX.search(osp.basename(cached))
            prefix = m.group(1) if m else None
        print(f'Downloading: "{url}" to {cached}', file=sys.stderr)
        torch.hub.download_url_to_file(url, cached, prefix,
                                       progress=progress)
    return torch_load(cached, map_location, name=f'{url} (as {cached})')


class _SafeTorch:
    """``torch`` as seen by mmengine's checkpoint module: everything is
    torch's, except that ``load`` is :func:`torch_load` (the ``pavi://``,
    ``s3://``, ``petrel://`` loaders and ``open-mmlab://`` local files
    call it)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, *args, **kwargs):
        return torch_load(f, map_location)


def patch_mmengine_loaders() -> bool:
    """Make every scheme of mmengine's ``CheckpointLoader`` load safely:
    local files (scheme ``''``: ``--resume``, ``load_from``, ``Pretrained``
    init) with :func:`load_from_local`, the URL schemes through
    :func:`load_url`, the others through :class:`_SafeTorch`.

    Returns:
        bool: Whether anything was patched now (idempotent).
    """
    import mmengine.runner.checkpoint as ckpt
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_local and \
            ckpt.load_url is load_url and type(ckpt.torch) is _SafeTorch:
        return False
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    ckpt.load_url = load_url
    ckpt.torch = _SafeTorch()
    return True




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
