# CCOP's object branch (RoI contrast with its own queue, intra-image
# discrimination, spatial-noise curriculum) for a ResNet-18 algorithm at the
# tiny scale (FPN 128 channels, queue 256, 96-px views), for
# `WithObjectBranch` (docs/mixing.md). Inherit it next to the algorithm's
# config and set
#     model = dict(type='WithObjectBranch', algorithm='MoCo',
#                  object_branch=_base_.object_branch_resnet18_tiny)
# (or `dict(_base_.object_branch_resnet18_tiny, momentum=...)` to change a
# value). The name starts with `object_branch_` so that it never clashes.
object_branch_resnet18_tiny = dict(
    type='ObjectBranch',
    in_layers=('layer1', 'layer2', 'layer3', 'layer4'),
    neck=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512],
              out_channels=128, num_outs=4, norm_cfg=dict(type='BN')),
    roi_neck=dict(type='ObjectRoINeck', in_channels=128,
                  hid_channels=512, out_channels=128,
                  featmap_strides=(4, 8, 16, 32),
                  assign_sizes=(21, 41, 82, 96)),  # CCOP's x 96 / 224
    roi_head=dict(type='ObjectContrastiveHead', temperature=0.2),
    intra_head=dict(type='IntraObjectDiscriminationHead', margin=0.4,
                    iou_thr=0.05),
    curriculum=dict(type='BoxJitterCurriculum', n_jitter=10),
    roi_queue_len=256,
    feat_dim=128,
    momentum=0.001)  # as MoCo's key encoder
