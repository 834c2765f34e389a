# The science protocol (docs/science.md, "Positive controls"): the settings
# under which mmpretrain's MoCo v2 measurably learns on the synthetic data
# within a CPU budget, and learns features that name the objects better
# than random convolutions do (the protocol sweep with the probe,
# tools/sweep_science_protocol.py --probe-data, docs/benchmarks/
# science_protocol_sweep.md; the control over five seeds on the test split:
# docs/benchmarks/science_controls_views128.json), shared by every
# pre-training method of `make science` so that only the algorithm differs.
# Inherit it next to the algorithm's config and use the `science_` names
# (they never clash):
#   a ResNet-18 of base width 16 (an order of magnitude cheaper per step on
#   CPU than width 64), 128-px views cropped from 50-100 % of the 128-px
#   scene, i.e. objects at 1-1.4 x the scale the probe and the detector see
#   them at (64-px views learnt the instance task but probed at random
#   init's level, 96-px views above it by only one sd; with 10-30 % crops
#   two views of the cluttered scene often share no object and the loss
#   stays near chance), no colour
#   augmentation and no blur (even a light colour jitter kept the loss at
#   0.88-0.90 x chance, MoCo v2's at 0.89 after 1600 iterations: the
#   synthetic textures are told apart by colour), temperature 0.1, lr 0.015
#   (0.06 kept the loss near chance), key momentum 0.99 (mmpretrain's
#   `momentum=0.01`), queue 256 (far fewer entries than the 2000 unlabeled
#   images), batch 32, 400 iterations, two data-loader workers.
science_width = 16
science_feat = science_width * 8  # ResNet-18's last stage
science_crop = 128
science_scale = (0.5, 1.)
# CCOP's object branch at this view size: the paper's RoI assignment sizes
# (48, 96, 192, 224 at 224 px) and its smallest kept box (144 px^2), both
# scaled with the view
science_roi_assign_sizes = (
    round(48 * science_crop / 224), round(96 * science_crop / 224),
    round(192 * science_crop / 224), science_crop)
science_box_area_thr = round(144 * (science_crop / 224)**2)
science_queue_len = 256
science_momentum = 0.01
science_temperature = 0.1
science_max_iters = 400
science_warmup_iters = 20
science_backbone = dict(
    depth=18, stem_channels=science_width, base_channels=science_width,
    init_cfg=None)
# photometric transforms of each view (none: see above)
science_photometric = []
science_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True)
science_optim_wrapper = dict(optimizer=dict(lr=0.015))
science_param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=science_warmup_iters),
    dict(type='CosineAnnealingLR', T_max=science_max_iters -
         science_warmup_iters, by_epoch=False, begin=science_warmup_iters,
         end=science_max_iters)
]
# replaces the inherited (epoch-based) loop entirely
science_train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=science_max_iters)
science_default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=science_max_iters // 2,
                    by_epoch=False, max_keep_ckpts=2),
    logger=dict(type='LoggerHook', interval=10),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))
science_log_processor = dict(by_epoch=False)
science_auto_scale_lr = dict(base_batch_size=32)
science_randomness = dict(seed=0)
