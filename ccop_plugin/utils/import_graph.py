"""The import graph of a package's modules, read from the source (``ast``).

Nothing is imported: each ``.py`` file of the package is parsed and every
``import`` / ``from ... import`` statement in it, at module level or inside a
function (a deferred import is still a dependency), becomes an edge to the
module it names inside the package. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. Used by
``tools/import_graph.py`` and by the test that the package has no import
cycle.
"""
import ast
import os
import os.path as osp
from typing import Dict, List, Optional, Set, Tuple

__all__ = [
    'module_names', 'imports', 'import_graph', 'find_cycles', 'to_dot',
    'build_parser', 'describe_graph'
]


def _module_name(root: str, path: str, package: str) -> str:
    rel = osp.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] == '__init__':
        rel = rel[:-1]
    return '.'.join([package] + rel)


def module_names(package_dir: str) -> Dict[str, str]:
    """``{module name: file}`` of every ``.py`` file under ``package_dir``
    (its basename is the package name; hidden folders are skipped)."""
    root = osp.abspath(package_dir)
    package = osp.basename(root)
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs
                         if not x.startswith('.') and x != '__pycache__')
        for f in sorted(files):
            if f.endswith('.py'):
                path = osp.join(d, f)
                out[_module_name(root, path, package)] = path
    return out


def _resolve(name: str, modules: Set[str]) -> Optional[str]:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split('.')
    while parts:
        cand = '.'.join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def imports(package_dir: str) -> Dict[str, Set[str]]:
    """``{module: {every dotted name it imports}}``, relative imports made
    absolute, ``from pkg import name`` as ``pkg.name`` (modules outside the
    package included: ``'subprocess'``, ``'os.path'``, ...).

    Raises:
        SyntaxError: A file does not parse (the message names it).
    """
    out: Dict[str, Set[str]] = {}
    for mod, path in module_names(package_dir).items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        is_pkg = osp.basename(path) == '__init__.py'
        here = mod.split('.') if is_pkg else mod.split('.')[:-1]
        names = out[mod] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here[:len(here) - (node.level - 1)]
                    base = '.'.join(parts + ([node.module]
                                             if node.module else []))
                else:
                    base = node.module or ''
                names.update(f'{base}.{a.name}' for a in node.names)
    return out


def import_graph(package_dir: str) -> Dict[str, Set[str]]:
    """``{module: {modules of the package it imports}}`` (see
    :func:`imports`; ``pkg.name`` that is not a module is an edge to
    ``pkg``).

    Args:
        package_dir (str): Folder of the package (with its ``__init__.py``).
    """
    found = imports(package_dir)
    modules = set(found)
    graph: Dict[str, Set[str]] = {}
    for mod, names in found.items():
        deps = (_resolve(n, modules) for n in names)
        graph[mod] = {d for d in deps if d is not None and d != mod}
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The import cycles: every strongly connected component of more than
    one module (Tarjan), each sorted, the list sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        # iterative Tarjan: the graph may be deeper than the recursion limit
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def to_dot(graph: Dict[str, Set[str]], strip: str = '') -> str:
    """Graphviz ``dot`` text of ``graph`` (``strip``: prefix removed from
    the labels, e.g. ``'ccop_plugin.'``)."""
    def label(m):
        return m[len(strip):] if strip and m.startswith(strip) else m
    lines = ['digraph imports {', '  rankdir=LR;', '  node [shape=box];']
    for m in sorted(graph):
        for d in sorted(graph[m]):
            lines.append(f'  "{label(m)}" -> "{label(d)}";')
    lines.append('}')
    return '\n'.join(lines) + '\n'


def build_parser():
    """``tools/import_graph.py``'s options."""
    import argparse
    p = argparse.ArgumentParser(
        description="Print the import graph of ccop_plugin's modules and its "
        'import cycles.')
    p.add_argument('package_dir', nargs='?', default=None,
                   help='package folder (default: the installed '
                   'ccop_plugin)')
    p.add_argument('--dot', action='store_true',
                   help='print Graphviz dot instead of a list')
    return p


def describe_graph(package_dir: Optional[str] = None,
                   dot: bool = False) -> Tuple[str, List[List[str]]]:
    """The graph as text and its cycles.

    Args:
        package_dir (str, optional): Package folder; None is the installed
            ``ccop_plugin``.
        dot (bool): Graphviz dot instead of one ``module: imports`` line per
            module and a summary line.

    Returns:
        tuple: ``(text, cycles)``.

    Raises:
        NotADirectoryError: ``package_dir`` is not a package folder.
    """
    if package_dir is None:
        import ccop_plugin
        package_dir = list(ccop_plugin.__path__)[0]
    if not osp.isfile(osp.join(package_dir, '__init__.py')):
        raise NotADirectoryError(f'{package_dir}: not a package folder (no '
                                 '__init__.py)')
    graph = import_graph(package_dir)
    prefix = osp.basename(osp.abspath(package_dir)) + '.'
    cycles = find_cycles(graph)
    if dot:
        return to_dot(graph, strip=prefix), cycles
    lines = []
    for m in sorted(graph):
        deps = ', '.join(d.replace(prefix, '', 1) for d in sorted(graph[m]))
        lines.append(f'{m.replace(prefix, "", 1)}: {deps or "-"}')
    lines.append(f'{len(graph)} modules, '
                 f'{sum(len(v) for v in graph.values())} imports, '
                 f'{len(cycles)} cycle(s)')
    return '\n'.join(lines) + '\n', cycles
