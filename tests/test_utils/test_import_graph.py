"""ccop_plugin has no import cycle and does not launch or reach into the
repository."""
import os.path as osp

import ccop_plugin
from ccop_plugin.utils.import_graph import (
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


def test_cli(capsys, monkeypatch):
    monkeypatch.syspath_prepend(osp.join(REPO, 'tools'))
    import import_graph as tool
    assert tool.main([PKG]) == 0
    out = capsys.readouterr().out
    assert 'apis.report: ' in out and ', 0 cycle(s)' in out
    assert tool.main(['--dot']) == 0
    assert capsys.readouterr().out.startswith('digraph imports {')
    assert tool.main([REPO + '/docs']) == 2
    assert 'not a package folder' in capsys.readouterr().err
