"""A per-image function that kills its worker on one image (importable by
the tool's worker processes, which do not see monkeypatches)."""
import os

from ccop_plugin.proposals.runner import process_image


def crash_on_img05(task, cfg):
    if task[2] == 'img_05.jpg':
        os._exit(1)  # what a segfault / OOM kill looks like to the pool
    return process_image(task, cfg)
