"""A toy model whose loss becomes NaN from a chosen iteration on, for the
non-finite-loss stop (imported by configs the tests write, hence a module)."""
import uuid

import torch
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from torch.utils.data import Dataset


@MODELS.register_module(force=True)
class NaNAtIterToy(BaseModel):
    """Linear regression on constant data; the loss of the ``nan_at``-th
    iteration (1-based) and every later one is NaN (``inf`` when
    ``value='inf'``)."""

    def __init__(self, nan_at: int, value: str = 'nan') -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.nan_at = nan_at
        self.value = float(value)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.linear(x)
        if mode != 'loss':
            return out
        self.calls += 1
        loss = out.pow(2).mean()
        if self.calls >= self.nan_at:
            loss = loss * self.value
        return dict(loss_toy=loss, loss_aux=out.abs().mean())


@DATASETS.register_module(force=True)
class ToyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.ones(2))


def runner_cfg(work_dir, nan_at, max_iters=6, scope='mmpretrain',
               value='nan'):
    """An iteration-based run of :class:`NaNAtIterToy` with the
    non-finite-loss check among its default hooks."""
    return dict(
        model=dict(type='NaNAtIterToy', nan_at=nan_at, value=value),
        work_dir=str(work_dir),
        experiment_name=f'nan_toy_{uuid.uuid4().hex}',
        default_scope=scope,
        train_dataloader=dict(
            dataset=dict(type='ToyData'), batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1),
            non_finite_loss=dict(type='NonFiniteLossHook')),
        log_processor=dict(by_epoch=False),
        env_cfg=dict(dist_cfg=dict(backend='gloo')))
