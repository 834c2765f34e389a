"""Distributed helpers for the CCOP queues.

The image queue receives a fixed number of keys per rank, the RoI queue a
*variable* number (each image has its own number of proposals). Both are filled
with :func:`all_gather_variable`, which gathers the per-rank counts, pads every
rank's keys to the largest count, gathers, and drops the padding, so the result
is the concatenation of all ranks' keys in rank order. Outside a distributed
run it returns its input.
"""
import torch
from mmengine.dist import all_gather, get_world_size


@torch.no_grad()
def all_gather_variable(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, counts may differ.

    Args:
        x (torch.Tensor): ``(N_r, *)`` tensor on this rank; ``N_r`` may be 0.

    Returns:
        torch.Tensor: ``(sum_r N_r, *)``, rank 0's rows first.
    """
    if get_world_size() == 1:
        return x
    count = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    counts = [int(c.item()) for c in all_gather(count)]
    # gloo/NCCL do not like empty tensors: pad to at least one row.
    max_count = max(max(counts), 1)
    padded = x.new_zeros((max_count, ) + tuple(x.shape[1:]))
    padded[:x.shape[0]] = x
    gathered = all_gather(padded)
    return torch.cat([g[:c] for g, c in zip(gathered, counts)], dim=0)


@torch.no_grad()
def enqueue_keys(queue: torch.Tensor, queue_ptr: torch.Tensor,
                 keys: torch.Tensor) -> None:
    """Write ``keys`` into a ring-buffer queue in place, wrapping around.

    Unlike the reference CCOP code, which truncates a batch that does not fit
    before the end of the queue (``min(batch, len - ptr)`` keys are written and
    the rest dropped), the keys wrap around to the start. When more keys than
    the queue length arrive at once, only the last ``queue_len`` are kept and
    the pointer still advances by the full count (modulo the length).

    Args:
        queue (torch.Tensor): ``(C, L)`` queue buffer.
        queue_ptr (torch.Tensor): ``(1,)`` long buffer, next write position.
        keys (torch.Tensor): ``(N, C)`` keys (already gathered across ranks).
    """
    queue_len = queue.shape[1]
    num = keys.shape[0]
    if num == 0:
        return
    ptr = int(queue_ptr[0])
    if num > queue_len:
        ptr = (ptr + num - queue_len) % queue_len
        keys = keys[-queue_len:]
    idx = (ptr + torch.arange(keys.shape[0], device=queue.device)) % queue_len
    queue[:, idx] = keys.t().to(queue.dtype)
    queue_ptr[0] = (ptr + keys.shape[0]) % queue_len
