"""The main job's settings and its log line (shared by its modules)."""
import os.path as osp
import time
from dataclasses import dataclass
from typing import Optional


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
            set by the pre-training config's batch size).
        finetune_epochs: Mask R-CNN epochs on the train split.
        workers: Proposal workers (None: all cores).
        with_fpn: Transfer the pre-trained FPN too (the papers' protocol).
    """
    work_dir: str = 'work_dirs/demo'
    seed: int = 0
    num_unlabeled: int = 200
    num_train: int = 120
    num_val: int = 40
    img_size: int = 128
    num_test: int = 0
    run_seed: Optional[int] = None
    pretrain_iters: int = 200
    pretrain_batch: int = 16
    finetune_epochs: int = 6
    workers: Optional[int] = None
    with_fpn: bool = True

    @property
    def train_seed(self) -> int:
        """The seed of the training runs (``run_seed``, else ``seed``)."""
        return self.seed if self.run_seed is None else self.run_seed

    @property
    def eval_split(self) -> str:
        """Split of the final figures: ``test`` when there is one."""
        return 'test' if self.num_test > 0 else 'val'

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


def log(msg: str) -> None:
    """One line of the main job's log (stdout, flushed)."""
    print(f'[main job {time.strftime("%H:%M:%S")}] {msg}', flush=True)
