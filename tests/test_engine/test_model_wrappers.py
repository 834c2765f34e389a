"""`--launcher pytorch` without a GPU: mmengine's launcher and DDP on CPU."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

import ccop_plugin  # noqa: F401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_init_dist_pytorch_and_ddp_on_cpu(monkeypatch):
    from mmengine.dist import init_dist
    from mmengine.registry import MODEL_WRAPPERS
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                     MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(k, v)
    init_dist('pytorch', backend='nccl')  # falls back to gloo without GPUs
    try:
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        model = MODEL_WRAPPERS.build(
            dict(type='AnyDeviceDistributedDataParallel'),
            default_args=dict(module=nn.Linear(3, 2), device_ids=[0],
                              broadcast_buffers=False))
        out = model.module(torch.ones(1, 3))
        out.sum().backward()
        assert model.device_ids is None
    finally:
        dist.destroy_process_group()
