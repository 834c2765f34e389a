"""Budget sweep: the smallest budget at which pre-training methods separate.

    python tools/sweep_budget.py --iters 100 200 400 --unlabeled 200 \
        --seeds 3 --record docs/benchmarks/science_sweep.json

Every grid point (unlabeled images x pre-training iterations) is a
multi-seed comparison of --methods (default: ccop mocov2 none) on the val
split; the test split of the final comparison is never read. Writes
``<work-dir>/sweep.md`` and the record after each point; rerunning reuses
every finished stage.
"""
import sys

from ccop_plugin.apis.sweep_cli import main

if __name__ == '__main__':
    sys.exit(main())
