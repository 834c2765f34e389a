"""Run the demo over run seeds and forced CPU instruction sets; record the
spread of its AP (what a user on another processor should expect).

    python tools/demo_spread.py --work-root work_dirs/spread \\
        --isa native avx2 --run-seeds 0 1 2 \\
        --record docs/benchmarks/demo_spread.json \\
        --markdown docs/benchmarks/demo_spread.md

Each instruction-set mode gets its own work dir ``<work-root>/<mode>``
(its run seeds share the data and proposals there); each run is a new
process of ``tools/run_demo.py`` with the mode's environment caps (torch
reads them once, when it loads). Finished runs are reused, so a rerun only
collects. Modes run in parallel with ``--jobs``.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from ccop_plugin.apis.demo_spread import (
    ISA_MODES,
    read_run,
    spread_markdown,
    write_spread_record,
)
from ccop_plugin.apis.main_job import MainJobConfig
from ccop_plugin.utils.fileio import atomic_write_text
from ccop_plugin.utils.machine import ISA_VARIABLES


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--work-root', required=True,
                   help='one work dir per mode below it')
    p.add_argument('--isa', nargs='+', default=['native', 'avx2'],
                   choices=list(ISA_MODES))
    p.add_argument('--run-seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--jobs', type=int, default=1,
                   help='modes run at the same time')
    p.add_argument('--record', help='write the JSON record here')
    p.add_argument('--markdown', help='write the markdown table here')
    return p.parse_args(argv)


def _run_mode(mode: str, work_dir: str, seeds) -> str:
    """Run (or reuse) every seed of one mode; '' or an error line."""
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    env.update(ISA_MODES[mode])
    demo = osp.join(osp.dirname(osp.abspath(__file__)), 'run_demo.py')
    os.makedirs(work_dir, exist_ok=True)
    for seed in seeds:
        log = osp.join(work_dir, f'demo_seed{seed}.log')
        print(f'[{mode}] run seed {seed} -> {log}', flush=True)
        with open(log, 'a') as f:
            rc = subprocess.call(
                [sys.executable, demo, '--work-dir', work_dir,
                 '--run-seed', str(seed)], env=env, stdout=f,
                stderr=subprocess.STDOUT)
        if rc:
            return f'{mode} run seed {seed} failed (exit {rc}); see {log}'
    return ''


def main(argv=None) -> int:
    args = parse_args(argv)
    load0 = os.getloadavg()[0]
    dirs = {m: osp.join(args.work_root, m) for m in args.isa}
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        errors = [e for e in pool.map(
            lambda m: _run_mode(m, dirs[m], args.run_seeds), args.isa) if e]
    if errors:
        for e in errors:
            print(f'error: {e}', file=sys.stderr)
        return 1
    runs = [read_run(dirs[m], s, m) for m in args.isa for s in args.run_seeds]
    settings = vars(MainJobConfig())
    for k in ('work_dir', 'run_seed', 'workers'):
        settings.pop(k)
    protocol = dict(
        command='python tools/demo_spread.py ' + ' '.join(
            a for a in (argv if argv is not None else sys.argv[1:])),
        settings=settings, isa_modes={m: ISA_MODES[m] for m in args.isa},
        reference_isa=args.isa[0],
        load_average=[round(load0, 2), round(os.getloadavg()[0], 2)])
    record = dict(protocol=protocol, runs=runs)
    md = spread_markdown(record)
    print(md)
    if args.record:
        try:
            write_spread_record(args.record, protocol, runs)
        except (FileExistsError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        print(f'recorded {len(runs)} runs in {args.record}')
    if args.markdown:
        atomic_write_text(args.markdown, md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
