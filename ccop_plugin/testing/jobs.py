"""The main job at its smallest."""


def tiny_main_job_config(work_dir: str, **overrides):
    """A :class:`~ccop_plugin.apis.job_config.MainJobConfig` that runs every
    stage of the main job (data, proposals, CCOP pre-training, conversion,
    Mask R-CNN fine-tuning, report) on 8 unlabeled, 4 train and 2 val
    images of 96 px: 3 pre-training iterations of batch 4, one fine-tuning
    epoch (one iteration of batch 4), one proposal worker, the narrow
    ResNet-18 of :func:`~ccop_plugin.testing.narrow_resnet18` in both models
    (``base_channels``). ``overrides`` replace any of these.
    """
    from ccop_plugin.apis.job_config import MainJobConfig
    from .models import NARROW_BASE_CHANNELS
    settings = dict(work_dir=work_dir, num_unlabeled=8, num_train=4,
                    num_val=2, img_size=96, pretrain_iters=3,
                    pretrain_batch=4, finetune_epochs=1, workers=1,
                    base_channels=NARROW_BASE_CHANNELS)
    settings.update(overrides)
    return MainJobConfig(**settings)
