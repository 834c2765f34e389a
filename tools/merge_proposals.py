#!/usr/bin/env python
"""Merge the shards of a selective-search run into the final proposal JSON.

Checks that every image of the run's list has exactly one result (or a
recorded failure) before writing; the JSON is written atomically and failed
images are listed in ``<out stem>.failures.txt``. An existing ``--out`` that
was not written from this work dir is not replaced without ``--overwrite``.

    # work dir ss.json.work/ (default) or a given one
    python tools/merge_proposals.py --out ss.json
    python tools/merge_proposals.py --out ss.json --work-dir /scratch/ss.work
"""
import sys

from ccop_plugin.proposals.cli import merge_main

if __name__ == '__main__':
    sys.exit(merge_main())
