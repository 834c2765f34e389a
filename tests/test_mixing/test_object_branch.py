"""Config-only mixes: stock mmpretrain algorithms + CCOP's object branch."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope

MIX_CONFIGS = [
    ('mix/mocov2_resnet18_object-branch_cpu-tiny.py', 'MoCo', {'loss'}),
    ('mix/densecl_resnet18_object-branch_cpu-tiny.py', 'DenseCL',
     {'loss_single', 'loss_dense'}),
    ('mix/byol_resnet18_object-branch_cpu-tiny.py', 'BYOL', {'loss'}),
]


@pytest.mark.parametrize('cfg_file,algo,own_losses', MIX_CONFIGS,
                         ids=lambda x: x if isinstance(x, str) else '')
def test_mix_trains_two_iterations(tiny_runner, cfg_file, algo, own_losses):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    runner = tiny_runner(cfg_file, iters=2)
    model = runner.model
    # the model IS the stock algorithm (same loss, same parameter names)
    assert isinstance(model, MODELS.get(algo))
    assert type(model).__name__ == f'{algo}WithObjectBranch'
    names = {n.split('.')[0] for n, _ in model.named_parameters()}
    assert {'backbone', 'neck', 'object_branch'} <= names
    seen = []
    orig = model.object_branch.loss

    def spy(inputs, data_samples):
        out = orig(inputs, data_samples)
        seen.append(out)
        return out

    model.object_branch.loss = spy
    before = model.object_branch.roi_queue_ptr.item()
    w0 = model.backbone.layer1[0].conv1.weight.detach().clone()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner.train()
    assert len(seen) == 2
    for out in seen:
        assert set(out) == {'loss_roi', 'loss_intra'}
        assert all(math.isfinite(v.item()) for v in out.values())
    assert model.object_branch.roi_queue_ptr.item() != before
    assert not torch.equal(w0, model.backbone.layer1[0].conv1.weight)
    logged = runner.message_hub.log_scalars
    assert {f'train/{k}' for k in own_losses | {'loss_roi', 'loss_intra'}
            } <= set(logged)
    # the curriculum of the branch is driven by CurriculumHook (the BYOL mix
    # shows the variant without it)
    assert model.curriculum is model.object_branch.curriculum
    if algo == 'BYOL':
        assert model.curriculum is None
    else:
        assert 'train/curriculum_iou_thr' in logged
