"""ccop_plugin.testing.disk_usage: bytes as du counts them, per test and
per module, fixture folders charged to the module that made them."""
import os

from ccop_plugin.testing.disk_usage import TmpUsage, tree_bytes


def _file(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(n))
    return path


def test_tree_bytes_counts_blocks_and_hard_links_once(tmp_path):
    assert tree_bytes(tmp_path / 'missing') == 0
    big = _file(tmp_path / 'd' / 'big.bin', 1 << 18)
    one = tree_bytes(tmp_path / 'd')
    assert one >= 1 << 18
    os.link(big, tmp_path / 'd' / 'hard.bin')
    os.symlink(big, tmp_path / 'd' / 'soft.bin')
    assert tree_bytes(tmp_path / 'd') - one < 1 << 14  # links: no data
    assert tree_bytes(big) == os.lstat(big).st_blocks * 512


def test_tests_and_fixture_folders_are_charged_to_their_module(tmp_path):
    base = tmp_path / 'basetemp'
    usage = TmpUsage(base)
    _file(base / 'session_data0' / 'x.bin', 3 << 16)  # a fixture's mktemp
    t1 = _file(base / 'test_a0' / 'ckpt.pth', 1 << 20).parent
    usage.after_test('tests/test_m.py::test_a', t1)
    size_a = tree_bytes(t1)
    _file(t1 / 'late.bin', 5 << 16)  # after its teardown: not counted
    usage.after_test('tests/test_n.py::test_b', None)
    _file(base / 'late_data0' / 'y.bin', 1 << 16)
    usage.at_session_end()
    assert usage.tests == {'tests/test_m.py::test_a': size_a}
    fixtures = tree_bytes(base / 'session_data0') + tree_bytes(
        base / 'late_data0')
    lines = usage.summary_lines(top=-1)
    assert lines[0].startswith(f'{(size_a + fixtures) / 1e6:.1f} MB '
                               f'written under {base}: ')
    assert f"{size_a / 1e6:.1f} MB in 1 tests' tmp_path" in lines[0]
    assert f'{fixtures / 1e6:.1f} MB in 2 fixture folders' in lines[0]
    rows = {ln.rsplit('  ', 1)[1]: ln.rsplit('  ', 1)[0].split()
            for ln in lines[2:]}
    # the session folder appeared while test_m ran: charged to test_m.py
    assert rows['tests/test_m.py'] == [
        f'{(size_a + tree_bytes(base / "session_data0")) / 1e6:.1f}',
        f'{size_a / 1e6:.1f}',
        f'{tree_bytes(base / "session_data0") / 1e6:.1f}']
    assert '(end of session)' in rows  # the folder made after the tests
    assert rows['tests/test_m.py::test_a'] == [f'{size_a / 1e6:.1f}']
    assert usage.summary_lines(top=0)[2:] == []


def test_workers_states_merge_into_one_summary(tmp_path):
    """pytest-xdist: each worker's measurements reach the controller's
    summary, fixture folders of the same name kept apart."""
    states = []
    for gw in ('popen-gw0', 'popen-gw1'):
        base = tmp_path / gw
        usage = TmpUsage(base)
        _file(base / 'data0' / 'x.bin', 1 << 20)  # same name in both
        t = _file(base / 'test_a0' / 'y.bin', 2 << 20).parent
        usage.after_test(f'tests/test_{gw[-1]}.py::test_a', t)
        usage.at_session_end()
        states.append(usage.state())
    total = TmpUsage(tmp_path)
    for st in states:
        total.merge(st, prefix=os.path.basename(st['basetemp']) + '/')
    lines = total.summary_lines()
    assert '2 tests\' tmp_path' in lines[0]
    assert '2 fixture folders' in lines[0]
    assert any(line.endswith('tests/test_0.py') for line in lines)
    assert any(line.endswith('tests/test_1.py') for line in lines)
