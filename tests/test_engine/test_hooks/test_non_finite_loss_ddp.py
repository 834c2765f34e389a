"""In a distributed run every rank stops at the iteration where any rank's
loss turned non-finite (a rank stopping alone would leave the others
waiting in the next gradient all-reduce)."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ccop_plugin.engine.hooks import NonFiniteLossError, NonFiniteLossHook


def _rank(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=2)
    try:
        hook = NonFiniteLossHook(stage='pre-training')
        runner = SimpleNamespace(iter=6, cfg=None)
        # iteration 7: only rank 0 sees NaN
        loss = math.nan if rank == 0 else 1.0
        try:
            hook.after_train_iter(runner, 0,
                                  outputs={'loss': torch.tensor(loss)})
            said = 'went on'
        except NonFiniteLossError as e:
            said = str(e)
        # the ranks are still in step: a collective after the check works
        t = torch.ones(1)
        dist.all_reduce(t)
        with open(os.path.join(out_dir, f'rank{rank}.txt'), 'w') as f:
            f.write(f'{said}\n{t.item()}')
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_ranks_stop_at_the_same_iteration(tmp_path):
    mp.spawn(_rank, args=(str(tmp_path / 'init'), str(tmp_path)),
             nprocs=2, join=True)
    said0, n0 = (tmp_path / 'rank0.txt').read_text().split('\n')
    said1, n1 = (tmp_path / 'rank1.txt').read_text().split('\n')
    assert 'stopped at iteration 7' in said0 and 'loss=nan' in said0
    assert 'stopped at iteration 7' in said1
    assert 'loss on another rank' in said1
    assert float(n0) == float(n1) == 2.0
