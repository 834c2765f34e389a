"""The package's one atomic writer (ccop_plugin.utils.fileio)."""
import errno
import glob
import json
import os
import os.path as osp
import stat

import pytest

from ccop_plugin.utils import fileio
from ccop_plugin.utils.fileio import (
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    current_umask,
)


def leftovers(d):
    return glob.glob(osp.join(str(d), '**', '*.tmp'), recursive=True,
                     include_hidden=True)


@pytest.fixture
def umask():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_replace_with_umask_permissions(tmp_path, umask):
    assert current_umask() == umask
    p = str(tmp_path / 'sub' / 'a.json')  # the folder is created
    atomic_write_json(p, dict(a=1))
    assert open(p).read() == '{\n "a": 1\n}\n'
    assert mode(p) == 0o666 & ~umask  # not mkstemp's 0600
    atomic_write_json(p, [1], indent=None, end='')
    assert open(p).read() == '[1]'
    atomic_write_bytes(p, b'\x00\x01')
    assert open(p, 'rb').read() == b'\x00\x01'
    atomic_write_text(p, 'é')
    assert open(p, encoding='utf-8').read() == 'é'
    with atomic_path(str(tmp_path / 'b.bin')) as tmp:
        assert osp.dirname(tmp) == str(tmp_path)  # same file system
        with open(tmp, 'wb') as f:
            f.write(b'x')
    assert mode(str(tmp_path / 'b.bin')) == 0o666 & ~umask
    assert leftovers(tmp_path) == []


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = str(tmp_path / 'a.txt')
    atomic_write_text(p, 'old')
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write('new, half')
            raise RuntimeError('writer failed')
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(p):
            raise KeyboardInterrupt
    with pytest.raises(TypeError):  # not serialisable: nothing written
        atomic_write_json(p, dict(a=object()))
    with pytest.raises(ValueError, match='mode'):
        with atomic_open(p, 'a'):
            pass
    assert open(p).read() == 'old'
    assert leftovers(tmp_path) == []


def test_disk_full_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path, monkeypatch):
    p = str(tmp_path / 'a.json')
    atomic_write_json(p, dict(a=1))
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr(fileio, 'open',
                        lambda *a, **k: Full(real_open(*a, **k)),
                        raising=False)
    with pytest.raises(OSError, match='No space left'):
        atomic_write_json(p, dict(a=2))

    def no_fsync(fd):  # the data cannot be made durable: not replaced
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.undo()
    monkeypatch.setattr(os, 'fsync', no_fsync)
    with pytest.raises(OSError, match='Input/output'):
        atomic_write_bytes(p, b'{}')
    monkeypatch.undo()
    assert json.load(open(p)) == dict(a=1)
    assert leftovers(tmp_path) == []


def test_proposal_work_dir_knows_the_temporary_files(tmp_path):
    """A run killed mid-write leaves ``.meta.json.<random>.tmp``; the work
    dir's --overwrite cleanup recognises it as proposal state."""
    from ccop_plugin.proposals.store import WORK_FILE_RE, clear_work_dir
    work = tmp_path / 'w'
    for name in ('meta.json', 'images.json', 'written.json'):
        with atomic_path(str(work / name)) as tmp:
            assert WORK_FILE_RE.match(osp.basename(tmp)), tmp
            open(tmp, 'w').close()
        (work / f'.{name}.k1LLed_x.tmp').write_text('{')  # a killed write
    assert clear_work_dir(str(work)) == 6
    assert os.listdir(str(work)) == []
