"""configs/ccop/..._amp-bf16_...: the paper config with bf16 mixed precision.

mmengine 0.10's ``AmpOptimWrapper`` refuses to build without a GPU, so on
CPU the config is checked as a config (it is the fp32 paper config plus the
wrapper, nothing else) and CCOP's step is run under the same bf16 autocast
the wrapper applies.
"""
import math

import pytest
import torch
from ccop_fixtures import fake_batch, tiny_ccop_cfg
from mmengine.config import Config
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.utils import get_config_path

AMP = 'ccop/ccop_resnet50-fpn_8xb32-amp-bf16-coslr-800e_coco.py'
PAPER = 'ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py'


def test_amp_config_is_the_paper_config_with_bf16():
    amp = Config.fromfile(get_config_path(AMP)).to_dict()
    paper = Config.fromfile(get_config_path(PAPER)).to_dict()
    wrapper = amp.pop('optim_wrapper')
    assert wrapper['type'] == 'AmpOptimWrapper'
    assert wrapper['dtype'] == 'bfloat16'
    assert wrapper['optimizer'] == paper['optim_wrapper']['optimizer']
    assert set(wrapper) == {'type', 'dtype', 'optimizer'}
    paper.pop('optim_wrapper')
    # the worker count is the only other key it sets, to the paper's value
    assert amp['train_dataloader']['num_workers'] == 8
    assert amp == paper


@pytest.mark.skipif(torch.cuda.is_available(), reason='GPU present')
def test_amp_wrapper_needs_a_gpu_with_this_mmengine():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(get_config_path(AMP))
    model = torch.nn.Linear(2, 2)
    with pytest.raises(AssertionError, match='only available'):
        build_optim_wrapper(model, cfg.optim_wrapper)


def test_ccop_step_under_bf16_autocast_on_cpu():
    """What the wrapper does per step (bf16 autocast around the forward):
    finite losses close to fp32's, finite gradients, fp32 parameters and
    queues."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_ccop_cfg())
    model.train()
    inputs, samples = fake_batch((2, 3), size=64, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    sum(losses.values()).backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(b.dtype in (torch.float32, torch.int64, torch.long)
               for b in model.buffers())
    # fp32 from the same state and random numbers: the same scale (bf16
    # rounding of logits / 0.2 and of the curriculum's candidate scores moves
    # the RoI loss by a few per cent here; not bit-identical, by design)
    model.load_state_dict(state)
    model.zero_grad()
    torch.manual_seed(1)
    ref = model.loss(inputs, samples)
    for k, v in ref.items():
        assert abs(losses[k].item() - v.item()) < 0.1 * max(
            1., abs(v.item())), k
