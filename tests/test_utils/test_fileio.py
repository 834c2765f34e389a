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


def test_replacing_a_file_keeps_its_permissions(tmp_path, umask):
    """A 0600 file (e.g. weights kept private) must not become readable by
    others when a tool replaces it; a new file gets the umask's mode."""
    private, script = str(tmp_path / 'w.pth'), str(tmp_path / 'run.sh')
    for p, m in ((private, 0o600), (script, 0o750)):
        open(p, 'w').close()
        os.chmod(p, m)
        atomic_write_text(p, 'new')
        assert open(p).read() == 'new' and mode(p) == m
    fresh = str(tmp_path / 'fresh.txt')
    atomic_write_text(fresh, 'x')
    assert mode(fresh) == 0o666 & ~umask


def test_stale_temporaries_of_the_target_are_removed(tmp_path):
    """A writer killed by SIGKILL leaves ``.<name>.<random>.tmp``; the next
    write of the same file removes it, but not another file's temporary,
    another file that merely looks alike, or a live writer's temporary."""
    p = str(tmp_path / 'out.pth')
    stale = tmp_path / '.out.pth.k1LLed_x.tmp'
    stale.write_bytes(b'\0' * 4096)
    other = tmp_path / '.other.pth.k1LLed_x.tmp'
    other.write_bytes(b'x')
    alike = tmp_path / '.out.pth.notes.txt.tmp'
    alike.write_bytes(b'x')
    with atomic_path(p) as live:  # a second writer of the same file
        open(live, 'wb').close()
        atomic_write_bytes(p, b'first')
        assert osp.exists(live)  # held: not removed under its writer
        assert not stale.exists()
    assert other.exists() and alike.exists()
    assert sorted(leftovers(tmp_path)) == sorted([str(other), str(alike)])
    # a stale file appearing later (another process) is found as well
    stale.write_bytes(b'x')
    atomic_write_bytes(p, b'again')
    assert not stale.exists() and open(p, 'rb').read() == b'again'


def test_sigterm_handling_is_undone_and_yields_to_the_process(tmp_path):
    """The write's SIGTERM handling (see the next test) is removed after the
    write; a process with its own SIGTERM handler keeps it."""
    import signal
    p = str(tmp_path / 'a.txt')
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    atomic_write_text(p, 'old')
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    seen = []
    old = signal.signal(signal.SIGTERM, lambda *a: seen.append(a[0]))
    try:
        with atomic_open(p) as f:
            signal.raise_signal(signal.SIGTERM)
            f.write('new')
    finally:
        signal.signal(signal.SIGTERM, old)
    assert seen == [signal.SIGTERM] and open(p).read() == 'new'


@pytest.mark.slow
def test_sigkill_and_sigterm_of_a_writing_process(tmp_path):
    """A real process: SIGTERM mid-write exits 143 leaving no temporary;
    SIGKILL leaves one, which the next write of that file removes."""
    import signal
    import subprocess
    import sys
    p = str(tmp_path / 'out.bin')
    atomic_write_bytes(p, b'old')
    code = (
        'import sys, time\n'
        'from ccop_plugin.utils.fileio import atomic_open\n'
        'with atomic_open(sys.argv[1], "wb") as f:\n'
        '    f.write(b"x" * 100000); f.flush()\n'
        '    print("writing", flush=True)\n'
        '    time.sleep(60)\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for sig, rc in ((signal.SIGTERM, 143), (signal.SIGKILL, -9)):
        proc = subprocess.Popen([sys.executable, '-c', code, p],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline() == b'writing\n'
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == rc
        left = leftovers(tmp_path)
        assert len(left) == (0 if sig == signal.SIGTERM else 1), left
    assert open(p, 'rb').read() == b'old'
    atomic_write_bytes(p, b'new')
    assert leftovers(tmp_path) == [] and open(p, 'rb').read() == b'new'


def test_same_file(tmp_path):
    a = tmp_path / 'a.json'
    a.write_text('{}')
    os.symlink(a, tmp_path / 'link.json')
    os.link(a, tmp_path / 'hard.json')
    for other in ('a.json', 'link.json', 'hard.json', 'sub/../a.json'):
        assert fileio.same_file(str(a), str(tmp_path / other)), other
    assert not fileio.same_file(str(a), str(tmp_path / 'missing.json'))
