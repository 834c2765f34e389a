"""Join science records of one protocol into one record, e.g. the
ablations' three run seeds with more run seeds run later into records of
their own (``tools/compare_pretraining.py --first-run-seed S``), oldest
first; a run two records both measured keeps the later one's values, both
listed in ``protocol.reruns`` (docs/science.md). ``make
science-ablations-more SCIENCE_MORE_SEED=S`` runs a seed and joins:

    python tools/merge_science_records.py \\
        docs/benchmarks/science_ablations.json \\
        docs/benchmarks/science.json \\
        docs/benchmarks/science_ablations_seed3.json \\
        --record docs/benchmarks/science_ablations_merged.json
"""
import sys

from ccop_plugin.apis.comparison_cli import merge_main

if __name__ == '__main__':
    sys.exit(merge_main())
