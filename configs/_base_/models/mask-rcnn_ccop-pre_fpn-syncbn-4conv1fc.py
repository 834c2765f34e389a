# The self-supervised detection protocol (Detectron2 setting of SoCo / DetCo
# / CCOP's benchmark) for any mmdet Mask R-CNN R50-FPN config: SyncBN in
# backbone, FPN and heads, 4conv1fc box head, no frozen stage, BN statistics
# trained, the converted CCOP backbone + FPN loaded by the model-level
# ``Pretrained`` init, no weight decay on norm layers. Inherit it next to the
# mmdet config and set
#     model = _base_.ssl_protocol_model
#     optim_wrapper = _base_.ssl_protocol_optim_wrapper
#     default_hooks = _base_.ssl_protocol_default_hooks
# Names start with `ssl_protocol_` so that they never clash with mmdet's.

# registers the plugin and its safe checkpoint loading (the allowlist that
# lets --resume load mmengine checkpoints with weights_only=True)
custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

pretrained_ckpt = 'work_dirs/ccop_r50_fpn/ccop_r50_fpn_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

ssl_protocol_model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=pretrained_ckpt),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
ssl_protocol_optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
# stop at the first NaN / inf loss with one line (stage, iteration) instead
# of training on and evaluating an empty result
ssl_protocol_default_hooks = dict(
    non_finite_loss=dict(type='NonFiniteLossHook'))
