"""Two CPU processes (gloo): the RoI queue receives every rank's keys.

Rank 0 has 3 + 2 boxes, rank 1 has 4 + 0: after one training step both ranks'
queues must hold rank 0's positive keys followed by rank 1's, and the pointer
must have moved by 9. The image queue gets 2 + 2 keys.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

BOXES = {0: (3, 2), 1: (4, 0)}


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        from ccop_fixtures import fake_batch, tiny_ccop_cfg
        from mmpretrain.registry import MODELS

        import ccop_plugin  # noqa: F401

        torch.manual_seed(0)  # same init and queues on both ranks
        model = MODELS.build(tiny_ccop_cfg())
        model.train()
        recorded = {}
        roi_queue = model.object_branch.roi_queue
        orig_roi, orig_img = roi_queue.enqueue, model.queue.enqueue

        def rec_roi(keys):
            recorded['roi'] = keys.clone()
            orig_roi(keys)

        def rec_img(keys):
            recorded['img'] = keys.clone()
            orig_img(keys)

        roi_queue.enqueue = rec_roi
        model.queue.enqueue = rec_img
        inputs, samples = fake_batch(BOXES[rank], seed=10 + rank)
        losses = model(inputs, samples, mode='loss')
        sum(losses.values()).backward()
        torch.save(
            dict(
                roi_keys=recorded['roi'],
                img_keys=recorded['img'],
                roi_queue=roi_queue.keys.clone(),
                roi_ptr=int(roi_queue.ptr),
                queue=model.queue.keys.clone(),
                ptr=int(model.queue.ptr),
                losses={k: float(v)
                        for k, v in losses.items()}),
            os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_rank_variable_roi_gather(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / 'rank0.pth', weights_only=False)
    r1 = torch.load(tmp_path / 'rank1.pth', weights_only=False)
    assert r0['roi_keys'].shape[0] == 5 and r1['roi_keys'].shape[0] == 4
    expected = torch.cat([r0['roi_keys'], r1['roi_keys']])
    for r in (r0, r1):
        assert r['roi_ptr'] == 9 and r['ptr'] == 4
        assert torch.allclose(r['roi_queue'][:, :9].t(), expected)
        assert torch.allclose(r['queue'][:, :4].t(),
                              torch.cat([r0['img_keys'], r1['img_keys']]))
        assert all(torch.isfinite(torch.tensor(v))
                   for v in r['losses'].values())
    # the untouched part of the queue is identical on both ranks
    assert torch.equal(r0['roi_queue'], r1['roi_queue'])
