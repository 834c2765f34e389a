"""Two protocol sweeps never share a work dir: the second is refused."""
import os
import subprocess
import sys

import pytest

from ccop_plugin.apis.protocol_sweep import run_protocol_sweep
from ccop_plugin.utils.folder_lock import FolderInUseError, FolderLock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_second_sweep_is_refused(tmp_path):
    wd, record = str(tmp_path / 'sweep'), str(tmp_path / 'r.json')
    with FolderLock(wd):
        with pytest.raises(FolderInUseError,
                           match='protocol sweep work dir .* is in use'):
            run_protocol_sweep({}, wd, record)
    assert run_protocol_sweep({}, wd, record) == []  # free again


@pytest.mark.slow
def test_tool_says_one_line(tmp_path):
    wd = str(tmp_path / 'sweep')
    with FolderLock(wd):
        r = subprocess.run(
            [sys.executable, 'tools/sweep_science_protocol.py', '--points',
             'w16_c64_q256_u2000', '--work-dir', wd, '--record',
             str(tmp_path / 'r.json')], cwd=REPO, capture_output=True,
            text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 2
    assert r.stderr.strip().count('\n') == 0
    assert 'is in use' in r.stderr and not os.path.exists(
        str(tmp_path / 'r.json'))
