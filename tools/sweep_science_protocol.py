#!/usr/bin/env python
"""Sweep MoCo v2's pre-training settings for a protocol in which it learns.

    python tools/sweep_science_protocol.py --points w16_c64_q256_u2000

Runs each named point of ``ccop_plugin.apis.protocol_sweep.SWEEP_POINTS``
(default: all) one after the other, and rewrites the record
(``--record``, default docs/benchmarks/science_protocol_sweep.json) and its
markdown table (same name, ``.md``) after each. A point already in the
record with the same settings is kept, not rerun, unless ``--rerun`` (then
it runs again and its record entry is replaced, e.g. to get its checkpoint
back for the probe). With ``--probe-data DATA`` each point's checkpoint and
five random initialisations are probed on DATA's val split
(``ccop_plugin.apis.sweep_probe``).
"""
import argparse
import sys

from ccop_plugin.apis.protocol_sweep import run_protocol_sweep
from ccop_plugin.apis.sweep_points import SWEEP_POINTS
from ccop_plugin.evaluation.probe_data import ProbeError
from ccop_plugin.utils.folder_lock import FolderInUseError


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--points', nargs='+', default=list(SWEEP_POINTS),
                   choices=list(SWEEP_POINTS))
    p.add_argument('--work-dir', default='work_dirs/protocol_sweep')
    p.add_argument('--record',
                   default='docs/benchmarks/science_protocol_sweep.json')
    p.add_argument('--probe-data',
                   help='a labelled dataset (tools/generate_dataset.py): '
                   'probe every point\'s checkpoint and random init on its '
                   'val split')
    p.add_argument('--rerun', action='store_true',
                   help='run the named points again even when the record '
                        'holds them with the same settings')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        run_protocol_sweep({n: SWEEP_POINTS[n] for n in a.points},
                           a.work_dir, a.record,
                           protocol=dict(command=' '.join(sys.argv)),
                           rerun=a.rerun, probe_data=a.probe_data)
    except (FileExistsError, FolderInUseError, ProbeError,
            ValueError) as e:
        print(f'sweep_science_protocol: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
