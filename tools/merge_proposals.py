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
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from ccop_plugin.proposals import (  # noqa: E402
    ProposalStateError,
    merge_work_dir,
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='proposal JSON to write')
    p.add_argument('--work-dir', help='work dir of the run (default: '
                   '<out>.work)')
    p.add_argument('--allow-missing', action='store_true',
                   help='write the JSON even if some images have no result')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out that was not written from '
                   'this work dir')
    args = p.parse_args(argv)
    work_dir = args.work_dir or args.out + '.work'
    try:
        m = merge_work_dir(work_dir, args.out,
                           allow_missing=args.allow_missing,
                           overwrite=args.overwrite)
    except ProposalStateError as e:
        sys.exit(f'error: {e}')
    print(f'wrote {m["out"]}: {m["images"]} images, {m["annotations"]} '
          f'proposals ({m["annotations"] / max(1, m["images"]):.1f} per '
          f'image), {m["failures"]} failed, {m["missing"]} missing, '
          f'{m["size_mb"]:.1f} MiB')


if __name__ == '__main__':
    main()
