"""The main job's settings and its log line (shared by its modules)."""
import os.path as osp
import time
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass
class MainJobConfig:
    """Settings of the main job; defaults finish in minutes on 2 cores.

    Attributes:
        work_dir: Folder of every stage's output.
        seed: Seed of the data and the proposals, and of the training runs
            unless ``run_seed`` is given.
        run_seed: Seed of pre-training, fine-tuning and the probe (data
            order, initialisation, augmentation); None: ``seed``.
        num_unlabeled / num_train / num_val / img_size: Synthetic data sizes.
        num_test: Images of a held-out test split (0: none; the final
            figures then come from the val split).
        pretrain_iters: Pre-training iterations (batch 4 per iteration...
            set by the pre-training config's batch size); under the
            ``cpu-science`` protocol None keeps the config's (and its
            schedule), a number rescales its schedule to that length.
        pretrain_batch: Pre-training batch; under ``cpu-science`` None
            keeps the config's.
        finetune_epochs: Mask R-CNN epochs on the train split.
        finetune_images: Fine-tune on the first N images of the train
            split only (None: all of it); the probe still reads the whole
            split, so a large labelled split for the probe does not
            multiply the detector's budget.
        workers: Proposal workers (None: all cores).
        with_fpn: Transfer the pre-trained FPN too (the papers' protocol).
        unlabeled / train_ann / train_images / val_ann / val_images /
            test_ann / test_images: A user's dataset instead of the
            synthetic scenes (:mod:`ccop_plugin.apis.user_data`): unlabeled
            image folders and COCO-format labelled splits.
        img_scale: Longer image side of fine-tuning and of the unlabeled
            copies (user data; None: chosen from the data).
        methods: The main job's methods (empty: ``ccop``, and ``ccop
            none`` on user data).
        finetune_batch: Fine-tuning batch (None: the config's, 8 on a GPU).
        device: ``auto`` (cuda when torch sees a GPU), ``cpu`` or ``cuda``.
        launcher: mmengine's launcher of the training runs (``pytorch``:
            several GPUs under torchrun).
        base_channels: Base width of every ResNet-18 of the job's models
            (pre-training and detector; None: the configs' 64). 16 is the
            narrow model of :func:`ccop_plugin.testing.narrow_resnet18`
            the tests run (checkpoints of a few MB); part of the training
            stages' keys when set.
        protocol: ``cpu-tiny`` (the tiny configs at this budget) or
            ``cpu-science`` (the science protocol's configs and detector,
            :data:`ccop_plugin.apis.methods.PROTOCOLS`).
    """
    work_dir: str = 'work_dirs/demo'
    seed: int = 0
    num_unlabeled: int = 200
    num_train: int = 120
    num_val: int = 40
    img_size: int = 128
    num_test: int = 0
    run_seed: Optional[int] = None
    pretrain_iters: Optional[int] = 200
    pretrain_batch: Optional[int] = 16
    finetune_epochs: int = 6
    finetune_images: Optional[int] = None
    workers: Optional[int] = None
    with_fpn: bool = True
    unlabeled: Tuple[str, ...] = ()
    train_ann: Optional[str] = None
    train_images: Optional[str] = None
    val_ann: Optional[str] = None
    val_images: Optional[str] = None
    test_ann: Optional[str] = None
    test_images: Optional[str] = None
    img_scale: Optional[int] = None
    methods: Tuple[str, ...] = ()
    finetune_batch: Optional[int] = None
    device: str = 'auto'
    launcher: str = 'none'
    base_channels: Optional[int] = None
    protocol: str = 'cpu-tiny'

    @property
    def user_data(self) -> bool:
        """Whether the job runs on a user's dataset (not synthetic)."""
        return bool(self.train_ann)

    @property
    def job_methods(self) -> Tuple[str, ...]:
        """The methods the main job runs."""
        if self.methods:
            return tuple(self.methods)
        return ('ccop', 'none') if self.user_data else ('ccop', )

    @property
    def train_seed(self) -> int:
        """The seed of the training runs (``run_seed``, else ``seed``)."""
        return self.seed if self.run_seed is None else self.run_seed

    @property
    def has_test(self) -> bool:
        """Whether the data has a held-out test split."""
        return bool(self.test_ann) if self.user_data else self.num_test > 0

    @property
    def eval_split(self) -> str:
        """Split of the final figures: ``test`` when there is one."""
        return 'test' if self.has_test else 'val'

    @property
    def stage_suffix(self) -> str:
        """``''`` for the data seed, ``'_seed<s>'`` for another run seed
        (the end of the folder names of that seed's stages)."""
        seed = self.train_seed
        return '' if seed == self.seed else f'_seed{seed}'

    @property
    def data_root(self) -> str:
        return osp.join(self.work_dir, 'data')

    @property
    def proposal_file(self) -> str:
        return osp.join(self.data_root, 'annotations',
                        'unlabeled_proposals.json')


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for ``auto`` / ``cpu`` / ``cuda``.

    Raises:
        ValueError: ``cuda`` asked for and torch sees no GPU.
    """
    import torch
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: torch sees no GPU (CUDA build of '
                         'torch and a driver needed); use --device cpu')
    return device


def log(msg: str) -> None:
    """One line of the main job's log (stdout, flushed)."""
    print(f'[main job {time.strftime("%H:%M:%S")}] {msg}', flush=True)
