#!/usr/bin/env python
"""Write the probe's controls record from probe result files.

    python tools/probe_controls.py \\
        --group random_init=r0.json,r1.json,... \\
        --group supervised=s0.json \\
        --group mocov2=m0.json,m1.json,... \\
        --out docs/benchmarks/science_controls.json

Every file is a ``tools/linear_probe.py --out`` result; all must be probed
alike (same data, splits, layers, cells, probe version). ``random_init``
and ``supervised`` name the two controls; every other group is checked
against ``random_init`` (its mean beats random init's by more than one
standard deviation, the larger of the two groups'). Writes the record and
its table (``--out`` with ``.md``) and prints the table.
"""
import sys

from ccop_plugin.evaluation.probe_controls import main

if __name__ == '__main__':
    sys.exit(main())
