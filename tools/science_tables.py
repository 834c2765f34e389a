"""Print the tables of a science record (``make science``'s
``docs/benchmarks/science.json`` or ``make science-ablations``'s record):
the summary README quotes, the positive controls, the paired differences
against MoCo v2 and of the ablations against CCOP, the losses over chance.

    python tools/science_tables.py docs/benchmarks/science.json
"""
import sys

from ccop_plugin.apis.comparison_cli import tables_main

if __name__ == '__main__':
    sys.exit(tables_main())
