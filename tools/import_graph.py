#!/usr/bin/env python
"""Print the import graph of ccop_plugin's modules and its import cycles.

    python tools/import_graph.py                 # module -> imports, cycles
    python tools/import_graph.py --dot > g.dot   # Graphviz (dot -Tsvg ...)

Read from the source with ``ast`` (nothing is imported); deferred imports
inside functions count. Exits 1 when there is an import cycle.
"""
import argparse
import os.path as osp
import sys

from ccop_plugin.utils.import_graph import find_cycles, import_graph, to_dot


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('package_dir', nargs='?', default=None,
                   help='package folder (default: the installed '
                   'ccop_plugin)')
    p.add_argument('--dot', action='store_true',
                   help='print Graphviz dot instead of a list')
    args = p.parse_args(argv)
    if args.package_dir is None:
        import ccop_plugin
        args.package_dir = osp.dirname(ccop_plugin.__file__)
    if not osp.isfile(osp.join(args.package_dir, '__init__.py')):
        print(f'error: {args.package_dir}: not a package folder (no '
              '__init__.py)', file=sys.stderr)
        return 2
    graph = import_graph(args.package_dir)
    prefix = osp.basename(osp.abspath(args.package_dir)) + '.'
    cycles = find_cycles(graph)
    if args.dot:
        print(to_dot(graph, strip=prefix), end='')
    else:
        for m in sorted(graph):
            deps = ', '.join(d.replace(prefix, '', 1)
                             for d in sorted(graph[m]))
            print(f'{m.replace(prefix, "", 1)}: {deps or "-"}')
        print(f'{len(graph)} modules, '
              f'{sum(len(v) for v in graph.values())} imports, '
              f'{len(cycles)} cycle(s)')
    for c in cycles:
        print('cycle: ' + ' <-> '.join(c), file=sys.stderr)
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())
