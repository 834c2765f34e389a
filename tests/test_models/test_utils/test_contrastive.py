"""Queue helpers of models/utils/contrastive.py."""
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils import enqueue_keys


# --------------------------------------------------------------- queue
def test_enqueue_wraps_around():
    queue = torch.zeros(2, 5)
    ptr = torch.zeros(1, dtype=torch.long)
    keys = torch.arange(1., 9.).view(4, 2)  # rows 1..4 (as pairs)
    enqueue_keys(queue, ptr, keys[:3])
    assert int(ptr) == 3
    enqueue_keys(queue, ptr, keys)  # 4 keys from position 3: wraps
    assert int(ptr) == 2
    assert torch.equal(queue.t()[3:], keys[:2])
    assert torch.equal(queue.t()[:2], keys[2:])
    assert torch.equal(queue.t()[2], keys[2])  # from the first write
    # more keys than the queue: the last 5 are kept, in ring order
    many = torch.arange(14.).view(7, 2)
    enqueue_keys(queue, ptr, many)
    assert int(ptr) == (2 + 7) % 5
    order = [(int(ptr) + i) % 5 for i in range(5)]
    assert torch.equal(queue.t()[order], many[-5:])
    enqueue_keys(queue, ptr, many[:0])
    assert int(ptr) == 4
