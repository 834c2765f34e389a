"""ccop_plugin has no import cycle and does not launch or reach into the
repository."""
import os.path as osp

import pytest

import ccop_plugin
from ccop_plugin.utils.import_graph import (
    build_parser,
    describe_graph,
    find_cycles,
    import_graph,
    imports,
    to_dot,
)

PKG = osp.dirname(ccop_plugin.__file__)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_graph_and_cycles_of_a_small_package(tmp_path):
    write(tmp_path, {
        'pkg/__init__.py': 'from . import a\n',
        'pkg/a.py': 'import os\nfrom .sub import b\n',
        'pkg/sub/__init__.py': 'from .b import f\n',
        'pkg/sub/b.py': 'def f():\n    from ..a import x\n    '
                        'from pkg.sub import f\n',
        'pkg/c.py': 'from pkg import sub\n',
    })
    g = import_graph(str(tmp_path / 'pkg'))
    assert g == {'pkg': {'pkg.a'}, 'pkg.a': {'pkg.sub.b'},
                 'pkg.sub': {'pkg.sub.b'},
                 'pkg.sub.b': {'pkg.a', 'pkg.sub'}, 'pkg.c': {'pkg.sub'}}
    # the deferred import inside f() closes the circle
    assert find_cycles(g) == [['pkg.a', 'pkg.sub', 'pkg.sub.b']]
    assert 'os' in imports(str(tmp_path / 'pkg'))['pkg.a']
    assert '"a" -> "sub.b";' in to_dot(g, strip='pkg.')


def test_ccop_plugin_has_no_import_cycle():
    graph = import_graph(PKG)
    assert 'ccop_plugin.apis.main_job' in graph
    assert find_cycles(graph) == []


def test_the_library_launches_no_process_and_finds_configs_in_the_package():
    found = imports(PKG)
    launch = {m for m, names in found.items()
              if any(n.split('.')[0] == 'subprocess' for n in names)}
    assert launch == set()  # pre-training runs in-process (the Runner)
    uses_file = set()
    for mod in found:
        path = osp.join(PKG, *mod.split('.')[1:])
        path = path + '.py' if osp.isfile(path + '.py') else osp.join(
            path, '__init__.py')
        if '__file__' in open(path).read():
            uses_file.add(mod)
    # the one place that locates files: <package>/.mim/configs
    assert uses_file == {'ccop_plugin.utils.config_path'}


def test_cli_text_dot_and_refusal():
    args = build_parser().parse_args([PKG])
    out, cycles = describe_graph(args.package_dir, args.dot)
    assert cycles == []
    assert 'apis.report: ' in out and out.endswith(', 0 cycle(s)\n')
    args = build_parser().parse_args(['--dot'])
    assert args.package_dir is None  # the installed package
    out, _ = describe_graph(args.package_dir, args.dot)
    assert out.startswith('digraph imports {')
    with pytest.raises(NotADirectoryError, match='not a package folder'):
        describe_graph(REPO + '/docs')


def test_tools_are_thin_and_independent():
    """Every tool is a command line over the package: at most 200 lines, no
    edit of ``sys.path``, no import of another tool."""
    import ast
    import glob
    tools = sorted(glob.glob(osp.join(REPO, 'tools', '*.py')))
    names = {osp.basename(t)[:-3] for t in tools}
    assert {'run_demo', 'train', 'benchmark_pipelines'} <= names
    for path in tools:
        text = open(path).read()
        assert len(text.splitlines()) <= 200, path
        assert 'sys.path' not in text, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or '']
            else:
                continue
            assert not {m.split('.')[0] for m in mods} & names, path


#: Calls that load a module from a folder or a file.
LOADERS = {'spec_from_file_location', 'syspath_prepend', 'insert', 'append'}


def _loads_a_tool(source: str) -> list:
    """The lines of ``source`` that load a module from the repository's
    tools/: a loader call whose path, followed through the names it is
    built from, holds a ``tools`` component and starts from the test's own
    ``__file__`` (a path from an installed package's ``__file__``, such as
    mmdet's shipped converters, is not the repository's)."""
    import ast
    tree = ast.parse(source)
    assigned = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)

    def parts(expr, depth=0):
        """(string constants, roots) of ``expr`` and the names it uses."""
        consts, roots = set(), set()
        for n in ast.walk(expr):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                consts.update(n.value.split('/'))
            elif isinstance(n, ast.Name) and n.id == '__file__':
                roots.add('own')
            elif isinstance(n, ast.Attribute) and n.attr == '__file__':
                roots.add('package')
            elif isinstance(n, ast.Name) and depth < 4:
                for value in assigned.get(n.id, []):
                    c, r = parts(value, depth + 1)
                    consts |= c
                    roots |= r
        return consts, roots

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(
            func, 'id', '')
        if name not in LOADERS:
            continue
        if name in ('insert', 'append') and 'sys.path' not in ast.unparse(
                func):
            continue
        consts, roots = set(), set()
        for arg in node.args:
            c, r = parts(arg)
            consts |= c
            roots |= r
        if 'tools' in consts and roots == {'own'}:
            found.append(node.lineno)
    return found


def test_the_tool_loader_check_tells_the_repository_from_a_package():
    repo = 'REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))\n'
    assert _loads_a_tool(repo + (
        'TOOLS = osp.join(REPO, "tools")\n'
        'def test(monkeypatch):\n'
        '    monkeypatch.syspath_prepend(TOOLS)\n')) == [4]
    assert _loads_a_tool(repo + (
        'sys.path.insert(0, osp.join(REPO, "tools"))\n'
        'spec = iu.spec_from_file_location(\n'
        '    "t", osp.join(REPO, "tools/linear_probe.py"))\n')) == [2, 3]
    assert _loads_a_tool(
        'path = osp.join(osp.dirname(mmdet.__file__), ".mim", "tools",\n'
        '                "dataset_converters", "cityscapes.py")\n'
        'spec = iu.spec_from_file_location("conv", path)\n'
        'spec2 = iu.spec_from_file_location(\n'
        '    "fake", osp.join(osp.dirname(__file__), "fake_ccop.py"))\n'
        'sys.path.insert(0, osp.dirname(__file__))\n') == []


def test_no_test_loads_a_tool():
    """Tests import the package only: a tool is a parser plus a call into
    ``ccop_plugin``, whose command line module the tests call directly."""
    import ast
    import glob
    tools = {osp.basename(t)[:-3]
             for t in glob.glob(osp.join(REPO, 'tools', '*.py'))}
    offenders = []
    for path in sorted(glob.glob(osp.join(REPO, 'tests', '**', '*.py'),
                                 recursive=True)):
        text = open(path).read()
        rel = osp.relpath(path, REPO)
        offenders += [f'{rel}:{line}' for line in _loads_a_tool(text)]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or '']
            else:
                continue
            if {m.split('.')[0] for m in mods} & tools:
                offenders.append(f'{rel}:{node.lineno}')
    assert offenders == []
