"""Save and restore the random state of training, so that resume is exact.

mmengine saves the model, the optimizer, the schedulers and the message hub,
but not the random number generators. A resumed run then draws other
augmentations and other box jitters than the uninterrupted run from the
first iteration after the checkpoint on. :class:`RandomStateHook` stores in
every checkpoint (``checkpoint['random_state']``):

* Python's ``random``, NumPy's global ``np.random`` and torch's CPU generator
  (and every CUDA device's when CUDA is available);
* the state of every sub-module of the model that has ``get_rng_state`` /
  ``set_rng_state`` methods (e.g. the curriculum's own generator,
  :class:`ccop_plugin.models.utils.BoxJitterCurriculum`), keyed by the
  module's name.

On resume the states are put back at the moment the uninterrupted run was at
when it saved them: right before the first batch after the checkpoint is
fetched. ``IterBasedTrainLoop`` first re-reads (and re-augments) the
``runner.iter`` batches already trained on; the states are restored after
that skip, just before the next batch is fetched. For ``EpochBasedTrainLoop``
they are restored in the first ``before_train_epoch`` (this hook runs first).

What is covered: a single-process run with ``num_workers=0`` (transforms in
the main process) resumes exactly -- the same batches, augmentations, jitters
and dropout masks, hence checkpoints equal tensor for tensor on CPU. Not
covered: data-loader worker processes (``num_workers > 0``) are seeded anew
by mmengine's ``worker_init_fn`` when they start, so their augmentations after
a resume differ from the uninterrupted run's (as they would with any other
number of workers); in distributed runs only rank 0 writes the checkpoint,
so only rank 0's state is saved and restored (other ranks restart their
streams from the seed; a warning says so). Non-deterministic kernels (GPU)
are outside any RNG.
"""
import logging
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from ccop_plugin.engine.model_wrappers import unwrap_model

KEY = 'random_state'


def _stateful_modules(model: torch.nn.Module) -> Dict[str, torch.nn.Module]:
    return {
        name: m
        for name, m in model.named_modules()
        if callable(getattr(m, 'get_rng_state', None))
        and callable(getattr(m, 'set_rng_state', None))
    }


def _numpy_state() -> Dict:
    # plain types and tensors only: loadable with torch.load(weights_only)
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(name=str(name), keys=torch.from_numpy(keys.astype(np.int64)),
                pos=int(pos), has_gauss=int(has_gauss),
                cached_gaussian=float(cached))


def _set_numpy_state(s: Dict) -> None:
    keys = np.asarray(torch.as_tensor(s['keys']).numpy(), dtype=np.uint32)
    np.random.set_state((s['name'], keys, s['pos'], s['has_gauss'],
                         s['cached_gaussian']))


def get_random_state(model: Optional[torch.nn.Module] = None) -> Dict:
    """Every random state of this process (and of ``model``'s generators)."""
    state = dict(
        python=random.getstate(),
        numpy=_numpy_state(),
        torch=torch.get_rng_state(),
        rank=get_rank(),
        world_size=get_world_size())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    if model is not None:
        state['modules'] = {
            name: m.get_rng_state()
            for name, m in _stateful_modules(model).items()
        }
    return state


def set_random_state(state: Dict,
                     model: Optional[torch.nn.Module] = None) -> None:
    """Restore a state returned by :func:`get_random_state`."""
    random.setstate(state['python'])
    _set_numpy_state(state['numpy'])
    torch.set_rng_state(torch.as_tensor(state['torch'], dtype=torch.uint8))
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            print_log(
                f'RandomStateHook: the checkpoint has the CUDA random state '
                f'of {len(cuda)} devices, this process sees '
                f'{torch.cuda.device_count()}; CUDA streams not restored',
                logger='current', level=logging.WARNING)
    if model is None:
        return
    saved = state.get('modules', {})
    for name, m in _stateful_modules(model).items():
        # checkpoints written before the module moved into a parent (CCOP's
        # curriculum into its object branch) keyed it by its own name
        old = name.rsplit('.', 1)[-1]
        if name in saved:
            m.set_rng_state(saved[name])
        elif old in saved:
            m.set_rng_state(saved[old])
        else:
            print_log(
                f'RandomStateHook: no saved random state for module '
                f'{name!r} ({type(m).__name__}); it keeps its seeded state',
                logger='current', level=logging.WARNING)


class _RestoreBeforeFetch:
    """Wrap a data-loader iterator; call ``restore`` right before fetch
    number ``skip + 1`` (i.e. after the loop's resume skip), then step aside.
    """

    def __init__(self, iterator, skip: int, restore) -> None:
        self._wrapped = iterator
        self._skip = skip
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._restore is not None:
            if self._skip == 0:
                restore, self._restore = self._restore, None
                restore()
            else:
                self._skip -= 1
        return next(self._wrapped)

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random state in checkpoints and restore it on resume.

    See the module docstring for what is covered. Add it to
    ``custom_hooks`` (the CCOP configs do).
    """

    priority = 'VERY_HIGH'  # restore before other hooks draw numbers

    def __init__(self) -> None:
        self._pending: Optional[Dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[KEY] = get_random_state(unwrap_model(runner.model))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(KEY)
        if state is None:
            print_log(
                'RandomStateHook: the checkpoint holds no random state '
                '(written without this hook); the resumed run draws other '
                'random numbers than an uninterrupted one would',
                logger='current', level=logging.WARNING)
            return
        if state.get('world_size', 1) > 1 or get_world_size() > 1:
            print_log(
                'RandomStateHook: distributed run; only rank 0 saved its '
                'random state, other ranks restart their streams from the '
                'seed', logger='current', level=logging.WARNING)
            if get_rank() != 0:
                return
        self._pending = state

    def before_train_epoch(self, runner) -> None:
        state, self._pending = self._pending, None
        if state is None:
            return
        model = unwrap_model(runner.model)
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is not None and runner.iter > 0:
            # IterBasedTrainLoop: it now skips `iter` batches, then fetches
            loop.dataloader_iterator = _RestoreBeforeFetch(
                iterator, runner.iter,
                lambda: set_random_state(state, model))
        else:
            set_random_state(state, model)
