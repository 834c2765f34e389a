"""The MoCo queue of negative keys, one module for every queue-based head."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .contrastive import queue_logits
from .dist_utils import all_gather_variable, enqueue_keys


class KeyQueue(nn.Module):
    """A ring buffer of normalised keys: the negatives of an InfoNCE loss.

    Holds the ``(dim, length)`` buffer ``keys`` (random unit vectors at
    first, as MoCo) and the ``(1,)`` write pointer ``ptr``; :meth:`enqueue`
    writes the keys of every rank (a variable number per rank) after the
    pointer, wrapping around; :meth:`logits` gives the MoCo ``(pos, neg)``
    logits of a query against its positive key and the queue. CCOP's image
    and RoI queues, PLRC's image queue and the object branch's RoI queue are
    each one of these.

    Args:
        dim (int): Key dimension.
        length (int): Number of keys.
    """

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        self.register_buffer('keys',
                             F.normalize(torch.randn(dim, length), dim=0))
        self.register_buffer('ptr', torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Gather ``(N, dim)`` keys from all ranks and write them."""
        enqueue_keys(self.keys, self.ptr, all_gather_variable(keys))

    def logits(self, query: torch.Tensor,
               key: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(N, 1)`` positive and ``(N, length)`` negative logits."""
        return queue_logits(query, key, self.keys)

    def extra_repr(self) -> str:
        return f'dim={self.keys.shape[0]}, length={self.keys.shape[1]}'


def remap_queue_keys(state_dict: Dict, old: Dict[str, str]) -> None:
    """Move queues saved as two buffers into :class:`KeyQueue` names.

    Checkpoints written before the queue was a module hold the queue ``Q``
    as the buffers ``Q`` and ``Q_ptr``; ``old`` maps each such full key
    (e.g. ``'roi_queue'``) to the new module's full prefix (e.g.
    ``'object_branch.roi_queue'``). Keys already in the new layout are kept.
    """
    for old_name, new in old.items():
        if old_name in state_dict and new + '.keys' not in state_dict:
            state_dict[new + '.keys'] = state_dict.pop(old_name)
        ptr = old_name + '_ptr'
        if ptr in state_dict and new + '.ptr' not in state_dict:
            state_dict[new + '.ptr'] = state_dict.pop(ptr)
