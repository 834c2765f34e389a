"""Join science records of one protocol into one record, e.g. the
ablations' three run seeds with a fourth run later into its own record
(``tools/compare_pretraining.py --first-run-seed 3``); a run that two
records share must agree (docs/science.md).

    cd docs/benchmarks && python ../../tools/merge_science_records.py \\
        science_ablations.json science.json science_ablations_seed3.json \\
        --record science_ablations_merged.json \\
        --table science_ablations_merged.md \\
        --figure science_ablations_merged.png
"""
import sys

from ccop_plugin.apis.comparison_cli import merge_main

if __name__ == '__main__':
    sys.exit(merge_main())
