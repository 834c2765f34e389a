# The CPU-tiny schedule of the tiny pre-training configs (CCOP, MoCo v2 and
# the object-branch mixes, compared by tools/compare_pretraining.py): SGD lr
# 0.03, 20 iterations (5 linear warm-up, then cosine), a checkpoint every 10
# iterations, lr scaled for batch 4, seed 0. Inherit it next to the
# algorithm's config and set
#     optim_wrapper = _base_.tiny_optim_wrapper
#     param_scheduler = _base_.tiny_param_scheduler
#     train_cfg = _base_.tiny_train_cfg
#     default_hooks = _base_.tiny_default_hooks   (checkpoint, logger, NaN stop)
#     log_processor = _base_.tiny_log_processor
#     auto_scale_lr = _base_.tiny_auto_scale_lr
#     randomness = _base_.tiny_randomness
# Names start with `tiny_` so that they never clash with the other bases.
tiny_max_iters = 20
tiny_optim_wrapper = dict(optimizer=dict(lr=0.03))
tiny_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', T_max=tiny_max_iters - 5, by_epoch=False,
         begin=5, end=tiny_max_iters)
]
# replaces the inherited (epoch-based) loop entirely
tiny_train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=tiny_max_iters)
tiny_default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, by_epoch=False,
                    max_keep_ckpts=2),
    logger=dict(type='LoggerHook', interval=5),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))
tiny_log_processor = dict(by_epoch=False)
tiny_auto_scale_lr = dict(base_batch_size=4)
tiny_randomness = dict(seed=0)
