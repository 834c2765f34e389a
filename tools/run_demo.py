"""The main job: data -> proposals -> pre-training -> Mask R-CNN -> report.

    python tools/run_demo.py                      # work_dirs/demo/report.md
    python tools/run_demo.py --work-dir work_dirs/demo2 --pretrain-iters 400
    python tools/run_demo.py --work-dir work_dirs/mine \
        --unlabeled photos/ --train-ann train.json --train-images images/ \
        --val-ann val.json --val-images images/ --methods ccop none

Without data options it runs on the embedded synthetic scenes; with them on
your own images and COCO-format labels. Each stage records its result;
rerunning the command reuses finished stages (an interrupted pre-training
resumes from its last checkpoint). The options are those of
ccop_plugin.apis.main_job_cli.
"""
import sys

from ccop_plugin.apis.main_job_cli import main

if __name__ == '__main__':
    sys.exit(main())
