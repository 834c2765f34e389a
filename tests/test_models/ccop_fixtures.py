"""Tiny CCOP model and fake batches shared by the model and engine tests."""
import torch
from mmpretrain.structures import DataSample

IMG = 64


def tiny_ccop_cfg(**overrides):
    cfg = dict(
        type='CCOP',
        queue_len=32,
        roi_queue_len=32,
        feat_dim=16,
        momentum=0.001,
        backbone=dict(
            type='ResNet',
            depth=18,
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='BN'),
            zero_init_residual=False,
            init_cfg=None),
        neck=dict(
            type='mmdet.FPN',
            in_channels=[64, 128, 256, 512],
            out_channels=32,
            num_outs=4,
            norm_cfg=dict(type='BN')),
        img_neck=dict(
            type='MoCoV2Neck',
            in_channels=512,
            hid_channels=64,
            out_channels=16,
            with_avg_pool=True),
        roi_neck=dict(
            type='ObjectRoINeck',
            in_channels=32,
            hid_channels=64,
            out_channels=16,
            assign_sizes=(12, 24, 48, 64)),
        head=dict(
            type='ContrastiveHead',
            loss=dict(type='CrossEntropyLoss'),
            temperature=0.2),
        roi_head=dict(type='ObjectContrastiveHead', temperature=0.2),
        intra_head=dict(type='IntraObjectDiscriminationHead', margin=0.4),
        curriculum=dict(type='BoxJitterCurriculum', n_jitter=4),
        data_preprocessor=dict(
            type='SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True))
    cfg.update(overrides)
    return cfg


def random_boxes(n, size=IMG, gen=None):
    xy = torch.rand(n, 2, generator=gen) * size * 0.6
    wh = 8 + torch.rand(n, 2, generator=gen) * size * 0.4
    return torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)


def fake_batch(num_boxes=(3, 5), size=IMG, seed=0):
    """inputs: list of 2 (B,3,H,W) tensors; data_samples with view_bboxes."""
    gen = torch.Generator().manual_seed(seed)
    b = len(num_boxes)
    inputs = [torch.randn(b, 3, size, size, generator=gen) for _ in range(2)]
    samples = []
    for n in num_boxes:
        vb = torch.stack([random_boxes(n, size, gen),
                          random_boxes(n, size, gen)])
        ds = DataSample()
        ds.set_field(vb, 'view_bboxes')
        samples.append(ds)
    return inputs, samples
