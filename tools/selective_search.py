#!/usr/bin/env python
"""Selective-search object proposals for a whole pre-training set.

Writes the COCO-style proposal JSON read by ``LoadProposals``. Runs on every
core, shows progress with rate and ETA, survives kills (rerun the same command
to resume), records unreadable images instead of stopping, and splits into
shards for cluster job arrays.

Examples::

    # COCO train2017, CCOP's reference settings, all cores (images over
    # 2 megapixels are searched shrunk; --max-pixels none: full resolution)
    python tools/selective_search.py data/coco/train2017 \\
        --ann-file data/coco/annotations/instances_train2017.json \\
        --out data/coco/proposals/selective_search_train2017.json

    # ~5x faster: search on images shrunk to a 320 px longer side
    python tools/selective_search.py data/coco/train2017 --max-size 320 \\
        --out data/coco/proposals/selective_search_train2017_320.json

    # Slurm array of 16 tasks, then merge
    python tools/selective_search.py data/coco/train2017 \\
        --out ss.json --shard ${SLURM_ARRAY_TASK_ID}/16 \\
        --workers ${SLURM_CPUS_PER_TASK}
    python tools/merge_proposals.py --out ss.json

    # SoCo's proposal recipe
    python tools/selective_search.py data/imgs --preset soco --out soco_ss.json
"""
import argparse
import os
import sys

# Kept light: ccop_plugin (and with it torch / OpenMMLab) is imported only
# after the worker fork server has been started, so the two imports overlap.


def prestart_fork_server():
    """Start the workers' fork server now; it imports the proposal runner in
    the background while this process does the same."""
    import multiprocessing as mp
    if 'forkserver' not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver
    mp.get_context('forkserver').set_forkserver_preload(
        ['ccop_plugin.proposals.runner'])
    forkserver.ensure_running()


def _parallel(argv) -> bool:
    """Whether the run will use more than one worker (``--workers`` read
    ahead of the full parser, which needs the package)."""
    if {'-h', '--help'} & set(argv):
        return False
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument('--workers')
    workers = peek.parse_known_args(argv)[0].workers
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else (os.cpu_count() or 1)
    try:
        return (int(workers) if workers else cores) > 1
    except ValueError:
        return False  # the full parser reports it


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _parallel(argv):
        prestart_fork_server()
    from ccop_plugin.proposals.cli import selective_search_main
    return selective_search_main(argv)


if __name__ == '__main__':
    sys.exit(main())
