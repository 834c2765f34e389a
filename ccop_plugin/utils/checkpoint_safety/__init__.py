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

Modules: ``errors`` (the errors, the opt-in, a refusal's line, the
excepthook), ``stand_ins`` (the allowlist and the validating stand-ins),
``torch_files`` (PyTorch files), ``weights_pickle`` (Detectron2 ``.pkl``),
``mmengine_schemes`` (mmengine's loaders). Import the public names from
this package.
"""
from .errors import (
    TRUST_ENV,
    TRUST_HINT,
    CheckpointError,
    UntrustedCheckpointError,
    checkpoints_trusted,
    error_line,
    install_excepthook,
    refusal_reason,
    trust_checkpoints,
)
from .mmengine_schemes import load_from_local, load_url, patch_mmengine_loaders
from .stand_ins import HISTORY_BUFFER_STATISTICS, RefusedByLoader
from .torch_files import load_checkpoint_file, torch_load
from .weights_pickle import load_weights_pickle, read_weights_pickle

__all__ = [
    'TRUST_ENV', 'TRUST_HINT', 'HISTORY_BUFFER_STATISTICS', 'CheckpointError',
    'UntrustedCheckpointError', 'RefusedByLoader', 'checkpoints_trusted',
    'error_line', 'install_excepthook', 'refusal_reason', 'trust_checkpoints',
    'load_from_local', 'load_url', 'patch_mmengine_loaders',
    'load_checkpoint_file', 'torch_load', 'load_weights_pickle',
    'read_weights_pickle'
]
