"""The main job: synthetic data -> proposals -> CCOP -> Mask R-CNN -> report.

    python tools/run_demo.py                      # work_dirs/demo/report.md
    python tools/run_demo.py --work-dir work_dirs/demo2 --pretrain-iters 400

Each stage records its result; rerunning the command reuses finished stages
(an interrupted pre-training resumes from its last checkpoint).
"""
import argparse
import sys

from ccop_plugin.apis.main_job import MainJobConfig, run_main_job


def parse_args(argv=None) -> MainJobConfig:
    d = MainJobConfig()
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--work-dir', default=d.work_dir)
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--num-unlabeled', type=int, default=d.num_unlabeled)
    p.add_argument('--num-train', type=int, default=d.num_train)
    p.add_argument('--num-val', type=int, default=d.num_val)
    p.add_argument('--img-size', type=int, default=d.img_size)
    p.add_argument('--pretrain-iters', type=int, default=d.pretrain_iters)
    p.add_argument('--pretrain-batch', type=int, default=d.pretrain_batch)
    p.add_argument('--finetune-epochs', type=int, default=d.finetune_epochs)
    p.add_argument('--workers', type=int, default=d.workers,
                   help='selective-search workers (default: all cores)')
    p.add_argument('--no-fpn', dest='with_fpn', action='store_false',
                   help='transfer the backbone only')
    a = vars(p.parse_args(argv))
    return MainJobConfig(**a)


def main(argv=None) -> int:
    run_main_job(parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
