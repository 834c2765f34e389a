"""What a pytest run writes under its base temporary folder.

``tests/conftest.py`` feeds a :class:`TmpUsage` from pytest's hooks and
prints :meth:`TmpUsage.summary_lines` at the end of the run, next to
``--durations``. With ``tmp_path_retention_policy = failed`` pytest deletes
a passing test's ``tmp_path`` at its teardown and the whole base folder at
the end of the session, so a single ``du`` afterwards sees nothing: each
test's folder is measured just before its teardown, and the folders of
module and session fixtures (``tmp_path_factory.mktemp``) once, at the
session's end, charged to the test module that was running when they
appeared. Under pytest-xdist each worker measures its own tests and
sends :meth:`TmpUsage.state` to the controller, which merges them.
"""
import os
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

PathLike = Union[str, Path]

_MB = 1e6


def tree_bytes(path: PathLike) -> int:
    """Bytes a file or folder takes on disk, as ``du`` counts them:
    allocated blocks, a file with several hard links inside the tree once,
    symbolic links not followed. 0 when ``path`` does not exist.
    """
    seen: Set[Tuple[int, int]] = set()
    total = 0
    stack = [os.fspath(path)]
    while stack:
        top = stack.pop()
        try:
            st = os.lstat(top)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_blocks * 512
        if os.path.isdir(top) and not os.path.islink(top):
            try:
                stack.extend(e.path for e in os.scandir(top))
            except OSError:
                continue
    return total


class TmpUsage:
    """Bytes written per test and per test module under one base folder.

    Args:
        basetemp: pytest's base temporary folder (``tmp_path_factory
            .getbasetemp()``).
    """

    def __init__(self, basetemp: PathLike):
        self.basetemp = Path(basetemp)
        self.tests: Dict[str, int] = {}
        self.test_module: Dict[str, str] = {}
        self._counted: Set[str] = set()
        self._fixture_dirs: Dict[str, str] = {}
        self._fixture_bytes: Dict[str, int] = {}

    def after_test(self, nodeid: str, tmp_path: Optional[PathLike]) -> None:
        """Measure the test's ``tmp_path`` (None when it had none) and note
        the fixture folders that appeared in the base folder meanwhile."""
        module = nodeid.split('::')[0]
        self.test_module[nodeid] = module
        if tmp_path is not None:
            name = Path(tmp_path).name
            self._counted.add(name)
            self.tests[nodeid] = tree_bytes(tmp_path)
        try:
            names = [e.name for e in os.scandir(self.basetemp)
                     if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for name in names:
            if name not in self._counted and name not in self._fixture_dirs:
                self._fixture_dirs[name] = module

    def at_session_end(self) -> None:
        """Measure the fixture folders, still on disk (call before pytest
        removes the base folder)."""
        self.after_test('(end of session)', None)
        for name, module in self._fixture_dirs.items():
            self._fixture_bytes[name] = tree_bytes(self.basetemp / name)

    def state(self) -> Dict:
        """The measurements as plain data (what a pytest-xdist worker sends
        its controller, :meth:`merge`)."""
        return dict(basetemp=str(self.basetemp), tests=self.tests,
                    test_module=self.test_module,
                    fixture_dirs=self._fixture_dirs,
                    fixture_bytes=self._fixture_bytes)

    def merge(self, state: Dict, prefix: str = '') -> None:
        """Add another run's :meth:`state` (a worker's; its fixture folders
        named with ``prefix``, as workers' folder names may repeat)."""
        self.tests.update(state['tests'])
        self.test_module.update(state['test_module'])
        for name, module in state['fixture_dirs'].items():
            self._fixture_dirs[prefix + name] = module
        for name, size in state['fixture_bytes'].items():
            self._fixture_bytes[prefix + name] = size

    def summary_lines(self, top: int = 10) -> List[str]:
        """The totals, an upper bound of the peak, the ``top`` test modules
        and the ``top`` tests (of 1 MB or more) that wrote the most (all of
        them when ``top`` < 0)."""
        per_tests: Dict[str, int] = defaultdict(int)
        per_fixtures: Dict[str, int] = defaultdict(int)
        for nodeid, size in self.tests.items():
            per_tests[self.test_module[nodeid]] += size
        for name, size in self._fixture_bytes.items():
            per_fixtures[self._fixture_dirs[name]] += size
        in_tests = sum(per_tests.values())
        in_fixtures = sum(per_fixtures.values())
        largest = max(self.tests.values(), default=0)
        lines = [
            f'{(in_tests + in_fixtures) / _MB:.1f} MB written under '
            f'{self.basetemp}: {in_tests / _MB:.1f} MB in '
            f'{len(self.tests)} tests\' tmp_path, {in_fixtures / _MB:.1f} '
            f'MB in {len(self._fixture_bytes)} fixture folders',
            f'peak on disk at most {(in_fixtures + largest) / _MB:.1f} MB '
            '(the fixture folders plus the largest tmp_path)']
        modules = sorted(set(per_tests) | set(per_fixtures),
                         key=lambda m: -(per_tests[m] + per_fixtures[m]))
        if top >= 0:
            modules = modules[:top]
        if modules:
            lines.append(f'{"MB":>9} {"tests":>9} {"fixtures":>9}  module')
        for m in modules:
            t, f = per_tests[m], per_fixtures[m]
            lines.append(f'{(t + f) / _MB:9.1f} {t / _MB:9.1f} '
                         f'{f / _MB:9.1f}  {m}')
        tests = sorted(self.tests, key=lambda n: -self.tests[n])
        tests = [n for n in (tests if top < 0 else tests[:top])
                 if self.tests[n] >= _MB]
        if tests:
            lines.append(f'{"MB":>9}  test (its tmp_path at teardown)')
        lines += [f'{self.tests[n] / _MB:9.1f}  {n}' for n in tests]
        return lines
