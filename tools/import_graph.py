#!/usr/bin/env python
"""Print the import graph of ccop_plugin's modules and its import cycles.

    python tools/import_graph.py                 # module -> imports, cycles
    python tools/import_graph.py --dot > g.dot   # Graphviz (dot -Tsvg ...)

Read from the source with ``ast`` (nothing is imported); deferred imports
inside functions count. Exits 1 when there is an import cycle, 2 when the
folder is not a package.
"""
import sys

from ccop_plugin.utils.import_graph import build_parser, describe_graph


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        text, cycles = describe_graph(args.package_dir, args.dot)
    except NotADirectoryError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(text, end='')
    for c in cycles:
        print('cycle: ' + ' <-> '.join(c), file=sys.stderr)
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())
