"""Safety of the proposal tool: stop signals, orphans, locks, foreign
outputs, changed images, symlink loops, bad --limit, unwritable outputs,
disk full, per-image cost bound. Tiny generated images; seconds each (the
orphan test starts the CLI, ~10-20 s)."""
import errno
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from proposal_runs import quiet, read, run

from ccop_plugin.datagen import make_scene, write_scenes
from ccop_plugin.proposals import (
    ProposalRunInterrupted,
    ProposalStateError,
    RunOptions,
    get_preset,
    list_image_dir,
    list_images,
    merge_work_dir,
    propose,
    run_proposals,
)
from ccop_plugin.proposals import proposal_file as proposal_file_mod
from ccop_plugin.proposals import runner as runner_mod
from ccop_plugin.proposals import store as store_mod
from ccop_plugin.proposals.cli import merge_main, selective_search_main
from ccop_plugin.proposals.search import search_shape
from ccop_plugin.proposals.store import WorkDirLock, iter_records, shard_files
from ccop_plugin.utils import fileio as fileio_mod
from ccop_plugin.utils import process_pool
from ccop_plugin.utils.fileio import atomic_write_text

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 120, 160


@pytest.fixture
def img_dir(tmp_path):
    d = str(tmp_path / 'imgs')
    write_scenes(d, 6, H, W, seed=7)
    return d


def records(work):
    return [r for p in shard_files(work) for r in iter_records(p)]


def tmp_files(*dirs):
    """Temporary files of the atomic writers (``.<name>.<random>.tmp``) and
    of earlier versions (``<name>.tmp.<pid>``)."""
    return [p for d in dirs for pat in ('*.tmp.*', '*.tmp')
            for p in glob.glob(osp.join(d, '**', pat), recursive=True,
                               include_hidden=True)]


# --------------------------------------------------------------- signals
@pytest.mark.parametrize('sig, exc', [(signal.SIGTERM,
                                       ProposalRunInterrupted),
                                      (signal.SIGINT, KeyboardInterrupt)])
def test_stop_signal_with_one_worker_stops_and_resumes(img_dir, tmp_path,
                                                       monkeypatch, request,
                                                       sig, exc):
    """A signal that arrives while an image is searched (in-process,
    --workers 1) stops the run with a non-zero exit; that image is not
    recorded as failed and the rerun gives the same bytes as a clean run."""
    ref, _ = run(img_dir, str(tmp_path), 'ref')
    real = runner_mod.propose
    calls = []
    if sig == signal.SIGINT:
        # Ctrl-C as in a terminal, also when pytest was started in the
        # background (nohup, CI agents), which starts with SIGINT ignored
        old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        request.addfinalizer(lambda: signal.signal(signal.SIGINT, old_int))

    def propose_then_signal(img, cfg, name=''):
        calls.append(name)
        if len(calls) == 3:  # the 3rd image is in flight when it arrives
            os.kill(os.getpid(), sig)
            time.sleep(0.5)  # the handler runs inside this frame
        return real(img, cfg, name)

    monkeypatch.setattr(runner_mod, 'propose', propose_then_signal)
    with pytest.raises(exc) as e:
        run(img_dir, str(tmp_path), 'cut')
    if exc is ProposalRunInterrupted:
        assert e.value.exit_code == 143
        assert e.value.summary.processed == 2
    work = str(tmp_path / 'cut.work')
    recs = records(work)
    assert len(recs) == 2 and not [r for r in recs if 'error' in r]
    assert not osp.exists(str(tmp_path / 'cut.json'))
    monkeypatch.setattr(runner_mod, 'propose', real)
    out, s = run(img_dir, str(tmp_path), 'cut')
    assert s.already_done == 2 and s.processed == 4
    assert s.failed == 0
    assert read(out) == read(ref)


class _FakeProc:
    def __init__(self, code):
        self.exitcode, self.pid = code, 1

    def join(self, timeout=None):
        pass


def test_workers_stopped_by_signal_stop_the_run():
    """A pool broken by SIGTERM to the workers (group kill) is a stop, not
    a per-image failure; a crash among them stays a failure."""
    with pytest.raises(process_pool.Stopped):
        process_pool.check_stopped([_FakeProc(-signal.SIGTERM),
                                    _FakeProc(-signal.SIGTERM)])
    process_pool.check_stopped([_FakeProc(1), _FakeProc(-signal.SIGTERM)])
    process_pool.check_stopped([_FakeProc(-signal.SIGKILL)])
    assert not issubclass(process_pool.Stopped, Exception)
    assert not issubclass(ProposalRunInterrupted, Exception)


@pytest.mark.slow
def test_sigkill_of_main_process_leaves_no_orphans(tmp_path):
    """kill -9 of a --workers 2 run: fork server, workers and resource
    tracker all exit within seconds."""
    psutil = pytest.importorskip('psutil')
    d = str(tmp_path / 'imgs')
    write_scenes(d, 4, 480, 480, seed=2)  # a few seconds each
    cmd = [sys.executable, osp.join(REPO, 'tools', 'selective_search.py'), d,
           '--out', str(tmp_path / 'o.json'), '--workers', '2',
           '--no-progress']
    p = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=REPO),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = []
    try:
        main = psutil.Process(p.pid)
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            # resource tracker + fork server + 2 workers
            if len(main.children(recursive=True)) >= 4:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        kids = main.children(recursive=True)
        assert len(kids) >= 4, 'workers did not start'
        p.kill()
        p.wait()
        deadline = time.time() + 30
        alive = kids
        while alive and time.time() < deadline:
            alive = [k for k in kids if k.is_running()
                     and k.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)
        assert not alive, f'orphans left: {[k.pid for k in alive]}'
    finally:
        if p.poll() is None:
            p.kill()
        for k in kids:
            try:
                k.kill()
            except psutil.Error:
                pass


# ---------------------------------------------------------- work dir lock
def test_overwrite_refused_while_a_job_uses_the_work_dir(img_dir, tmp_path):
    """A job is running (in a thread, held on its 3rd image); --overwrite of
    its work dir is refused and the job finishes with all its results."""
    import threading
    started, release = threading.Event(), threading.Event()

    def slow(task, cfg):
        if task[0] == 2:
            started.set()
            release.wait(60)
        return runner_mod.process_image(task, cfg)

    res = {}
    job = threading.Thread(target=lambda: res.update(
        s=run(img_dir, str(tmp_path), 'w', worker_fn=slow)[1]))
    job.start()
    try:
        assert started.wait(60)
        with pytest.raises(ProposalStateError, match='in use by a running'):
            run(img_dir, str(tmp_path), 'w', overwrite=True)
        assert len(records(str(tmp_path / 'w.work'))) == 2
    finally:
        release.set()
        job.join(60)
    assert res['s'].processed == 6
    assert len(json.loads(read(str(tmp_path / 'w.json')))['images']) == 6
    # a job that is clearing it with --overwrite keeps others out, too
    with WorkDirLock(str(tmp_path / 'w.work'), exclusive=True):
        with pytest.raises(ProposalStateError, match='being cleared'):
            run(img_dir, str(tmp_path), 'w')
    _, s = run(img_dir, str(tmp_path), 'w', overwrite=True)
    assert s.processed == 6 and s.already_done == 0


def test_work_dir_lock_is_a_folder_lock_whose_holder_file_is_not_foreign(
        img_dir, tmp_path):
    """The work dir's lock is the package's FolderLock: an --overwrite run
    names itself in the lock's holder file while it clears the folder, that
    file is neither foreign state nor left behind, and a second
    --overwrite run after it works."""
    from ccop_plugin.utils.folder_lock import HOLDER_FILE, FolderInUseError
    work = str(tmp_path / 'w.work')
    run(img_dir, str(tmp_path), 'w')
    with WorkDirLock(work, exclusive=True) as lock:
        assert osp.isfile(osp.join(work, HOLDER_FILE))
        with pytest.raises(FolderInUseError, match='being cleared'):
            WorkDirLock(work)
        store_mod.clear_work_dir(work)  # the holder file is not refused
        assert os.listdir(work) == [HOLDER_FILE]
        lock.share()
        assert not osp.exists(osp.join(work, HOLDER_FILE))
    for _ in range(2):
        _, s = run(img_dir, str(tmp_path), 'w', overwrite=True)
        assert s.processed == 6
        assert HOLDER_FILE not in os.listdir(work)


def test_damaged_work_dir_meta_names_the_file(img_dir, tmp_path):
    run(img_dir, str(tmp_path), 'w')
    meta_path = str(tmp_path / 'w.work' / 'meta.json')
    with open(meta_path, 'w') as f:
        f.write('{"format": ')
    with pytest.raises(ProposalStateError, match='meta.json: not JSON'):
        run(img_dir, str(tmp_path), 'w')


def test_overwrite_does_not_delete_foreign_files(img_dir, tmp_path):
    work = tmp_path / 'w.work'
    work.mkdir()
    (work / 'thesis.tex').write_text('precious')
    with pytest.raises(ProposalStateError, match='thesis.tex'):
        run(img_dir, str(tmp_path), 'w', overwrite=True)
    assert (work / 'thesis.tex').read_text() == 'precious'


# ------------------------------------------------------------ foreign out
def test_existing_out_of_another_run_is_not_replaced(img_dir, tmp_path,
                                                     capsys):
    out = str(tmp_path / 'taken.json')
    with open(out, 'w') as f:
        f.write('{"not": "ours"}')
    with pytest.raises(ProposalStateError, match='already exists'):
        run(img_dir, str(tmp_path), 'a', out=out)
    assert read(out) == b'{"not": "ours"}'
    assert not osp.exists(str(tmp_path / 'a.work'))  # refused before work
    out, _ = run(img_dir, str(tmp_path), 'a', out=out, overwrite=True)
    assert json.loads(read(out))['images']
    run(img_dir, str(tmp_path), 'a', out=out)  # our own output: fine
    # another run (other work dir) may not replace it
    with pytest.raises(ProposalStateError, match='not written by this run'):
        run(img_dir, str(tmp_path), 'b', out=out)
    # nor may a merge of it, and the CLI says so in one line
    work_b = str(tmp_path / 'b.work')
    run_proposals(list_image_dir(img_dir), img_dir, get_preset('ccop'),
                  work_b, RunOptions(workers=1, progress=False, log=quiet))
    with pytest.raises(ProposalStateError, match='already exists'):
        merge_work_dir(work_b, out, log=quiet)
    assert merge_main(['--out', out, '--work-dir', work_b]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert '--overwrite' in err
    assert read(out) != b'{"not": "ours"}'  # still run a's output
    # an output edited after the run wrote it is not replaced either
    with open(out, 'a') as f:
        f.write(' ')
    with pytest.raises(ProposalStateError, match='changed since'):
        run(img_dir, str(tmp_path), 'a', out=out)


def test_outputs_written_are_an_ownership_manifest(img_dir, tmp_path):
    """written.json is the package's Manifest of the outputs the work dir
    wrote, with their content's digest: a copy back of the same bytes (new
    mtime) is still this run's output, an edit is not; a work dir whose
    written.json has the earlier format (path -> [size, mtime]) keeps its
    output."""
    out, _ = run(img_dir, str(tmp_path), 'a')
    written = osp.join(str(tmp_path / 'a.work'), 'written.json')
    with open(written) as f:
        manifest = json.load(f)
    assert manifest['files'] == [osp.relpath(out, str(tmp_path / 'a.work'))]
    assert set(manifest['sha256']) == set(manifest['files'])
    data = read(out)
    os.remove(out)
    with open(out, 'wb') as f:
        f.write(data)
    st = os.stat(out)
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    run(img_dir, str(tmp_path), 'a', out=out)  # same content: ours
    st = os.stat(out)
    with open(written, 'w') as f:  # the format before the manifest
        json.dump({osp.abspath(out): [st.st_size, st.st_mtime_ns]}, f)
    run(img_dir, str(tmp_path), 'a', out=out)
    with open(written) as f:
        assert json.load(f)['files']  # converted on the way
    with open(out, 'a') as f:
        f.write(' ')
    with pytest.raises(ProposalStateError, match='changed since'):
        run(img_dir, str(tmp_path), 'a', out=out)


# -------------------------------------------------------- changed images
def test_image_replaced_under_same_name_is_recomputed(img_dir, tmp_path):
    out, s = run(img_dir, str(tmp_path))
    name = 'scene_00003.jpg'
    path = osp.join(img_dir, name)
    img, _ = make_scene(90, 200, seed=123)  # other size, other content
    cv2.imwrite(path, img)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    msgs = []
    out, s = run(img_dir, str(tmp_path), log=msgs.append)
    assert s.processed == 1 and s.changed == 1
    assert s.changed_files == [name]
    assert any('changed on disk' in m for m in msgs)
    data = json.loads(read(out))
    im = [i for i in data['images'] if i['file_name'] == name][0]
    assert (im['width'], im['height']) == (200, 90)
    # the same bytes as a fresh run over the current images
    fresh, _ = run(img_dir, str(tmp_path), 'fresh')
    assert read(out) == read(fresh)
    # a third run: nothing changed, nothing to do, same bytes
    _, s = run(img_dir, str(tmp_path))
    assert s.processed == 0
    assert read(out) == read(fresh)


def test_corrupt_image_replaced_by_a_good_one_is_recomputed(img_dir,
                                                            tmp_path):
    bad = osp.join(img_dir, 'zz_bad.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg')
    out, s = run(img_dir, str(tmp_path))
    assert s.failed == 1
    cv2.imwrite(bad, make_scene(H, W, seed=5)[0])
    out, s = run(img_dir, str(tmp_path))  # no --retry-failed needed
    assert s.processed == 1 and s.failed == 0
    assert 'zz_bad.jpg' in [i['file_name'] for i in
                            json.loads(read(out))['images']]
    # and a good image replaced by a corrupt one is a failure now
    with open(bad, 'wb') as f:
        f.write(b'broken again')
    out, s = run(img_dir, str(tmp_path))
    assert s.failed == 1
    assert 'zz_bad.jpg' not in [i['file_name'] for i in
                                json.loads(read(out))['images']]


# ---------------------------------------------------------------- listing
def test_symlink_loop_lists_each_image_once(img_dir):
    os.makedirs(osp.join(img_dir, 'sub'))
    write_scenes(osp.join(img_dir, 'sub'), 1, H, W, seed=9, names=['s.jpg'])
    os.symlink('..', osp.join(img_dir, 'sub', 'loop'))
    os.symlink('sub', osp.join(img_dir, 'zz_alias'))
    names = [e.file_name for e in list_image_dir(img_dir)]
    assert len(names) == len(set(names)) == 7
    assert 'sub/s.jpg' in names


@pytest.mark.parametrize('limit', [0, -1])
def test_bad_limit_is_a_clear_error(img_dir, tmp_path, limit, capsys):
    with pytest.raises(ValueError, match='--limit'):
        list_images(img_dir, limit=limit)
    assert len(list_images(img_dir, limit=2)) == 2
    assert selective_search_main([img_dir, '--out', str(tmp_path / 'x.json'),
                                  '--limit', str(limit), '--workers',
                                  '1']) == 1
    assert 'error: --limit must be a positive' in capsys.readouterr().err
    assert not osp.exists(str(tmp_path / 'x.json.work'))


# -------------------------------------------------------------- writing
def test_unwritable_out_is_refused_before_any_work(img_dir, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('a file, not a folder')
    seen = []

    def fn(task, cfg):
        seen.append(task)
        return runner_mod.process_image(task, cfg)

    with pytest.raises(ProposalStateError, match='cannot write --out'):
        run(img_dir, str(tmp_path), out=str(blocker / 'out.json'),
            worker_fn=fn)
    with pytest.raises(ProposalStateError, match='cannot write --work-dir'):
        run_proposals(list_image_dir(img_dir), img_dir, get_preset('ccop'),
                      str(blocker / 'w.work'),
                      RunOptions(workers=1, progress=False, log=quiet,
                                 worker_fn=fn))
    with pytest.raises(ProposalStateError, match='is a folder'):
        run(img_dir, str(tmp_path), out=str(tmp_path), worker_fn=fn)
    assert seen == []


def _enospc_open(real_open, after):
    """``open`` whose text-mode writers fail with ENOSPC after ``after``
    characters (what a full disk does)."""
    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, s):
            self.n += len(s)
            if self.n > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(s)

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake(path, mode='r', *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if 'w' in mode else f
    return fake


def test_disk_full_leaves_no_tmp_files_and_old_output(img_dir, tmp_path,
                                                      monkeypatch):
    out, _ = run(img_dir, str(tmp_path))
    old = read(out)
    work = str(tmp_path / 'out.work')
    # work dir, output file and the atomic writer
    for mod in (store_mod.work_dir, store_mod.records, store_mod.merge,
                proposal_file_mod, fileio_mod):
        monkeypatch.setattr(mod, 'open', _enospc_open(open, 500),
                            raising=False)
    with pytest.raises(ProposalStateError, match='No space left'):
        merge_work_dir(work, out, log=quiet)
    assert read(out) == old
    with pytest.raises(OSError):
        atomic_write_text(str(tmp_path / 'note.txt'), 'x' * 1000)
    assert not osp.exists(str(tmp_path / 'note.txt'))
    assert tmp_files(str(tmp_path)) == []
    monkeypatch.undo()

    # the shard file fills up mid-run: clear error, resumable
    def full(self, rec):
        if rec['file_name'] == 'scene_00002.jpg':
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, rec)
    real_write = store_mod.ShardWriter.write
    monkeypatch.setattr(store_mod.ShardWriter, 'write', full)
    with pytest.raises(ProposalStateError, match='run the same command'):
        run(img_dir, str(tmp_path), 'full')
    assert tmp_files(str(tmp_path)) == []
    monkeypatch.undo()
    out2, s = run(img_dir, str(tmp_path), 'full')
    assert s.already_done == 2 and read(out2) == old


# ------------------------------------------------------------ cost bound
def test_search_shape_bounds():
    assert search_shape(50, 10000) == (50, 10000)  # no bound given
    assert search_shape(50, 10000, max_aspect=8) == (50, 400)
    assert search_shape(10000, 50, max_aspect=8) == (400, 50)
    assert search_shape(4000, 3000, max_pixels=1200000) == (1265, 949)
    assert search_shape(480, 640, None, 2000000, 8) == (480, 640)
    assert search_shape(480, 640, 320, 2000000, 8) == (240, 320)


def test_extreme_aspect_image_is_bounded_and_recorded(img_dir, tmp_path):
    """A 50x4000 strip is searched at 50x400 (it would take ~20x longer at
    full size), its boxes are in original pixels, and the run names it."""
    img, _ = make_scene(50, 4000, seed=3)
    cfg = get_preset('ccop')
    assert cfg.max_search_aspect == 8 and cfg.max_pixels == 2000000
    res = propose(img, cfg, 'strip', return_candidates=True)
    assert res['search_hw'] == (50, 400)
    c = res['candidates']
    assert c[:, 2].max() > 3000 and (c[:, 2] <= 4000).all()
    assert (c[:, 3] <= 50).all()
    assert propose(make_scene(H, W, seed=1)[0], cfg, 'x')['search_hw'] is None
    cv2.imwrite(osp.join(img_dir, 'strip.jpg'), img)
    msgs = []
    out, s = run(img_dir, str(tmp_path), log=msgs.append)
    assert s.bounded == 1 and s.bounded_files == ['strip.jpg']
    assert any('shrunk for cost' in m and 'strip.jpg' in m for m in msgs)
    recs = {r['file_name']: r for r in records(str(tmp_path / 'out.work'))}
    assert recs['strip.jpg']['search_hw'] == [50, 400]
    assert 'search_hw' not in recs['scene_00000.jpg']
    assert s.merge['bounded'] == 1
    data = json.loads(read(out))
    im = [i for i in data['images'] if i['file_name'] == 'strip.jpg'][0]
    assert (im['width'], im['height']) == (4000, 50)
    assert set(im) == {'id', 'file_name', 'width', 'height'}


def test_work_dir_of_older_version_needs_old_bounds(img_dir, tmp_path):
    """A work dir made before the cost bounds existed resumes only with
    them disabled (its results were computed without them)."""
    out, _ = run(img_dir, str(tmp_path), 'old',
                 cfg=get_preset('ccop', max_pixels=None).replace(
                     max_search_aspect=None))
    meta_path = str(tmp_path / 'old.work' / 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    for k in ('max_pixels', 'max_search_aspect'):
        del meta['config'][k]
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    with pytest.raises(ProposalStateError, match='max_pixels None -> 2000000'):
        run(img_dir, str(tmp_path), 'old')
    _, s = run(img_dir, str(tmp_path), 'old',
               cfg=get_preset('ccop').replace(max_pixels=None,
                                              max_search_aspect=None))
    assert s.processed == 0 and s.already_done == 6
    assert np.isfinite(s.proposals_per_image)


def test_sigterm_while_writing_the_json_leaves_no_tmp(img_dir, tmp_path,
                                                      monkeypatch):
    real = proposal_file_mod._write_proposal_json

    def write_then_term(tmp, *a):
        with open(tmp, 'w') as f:
            f.write('{"info":')
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        return real(tmp, *a)

    monkeypatch.setattr(proposal_file_mod, '_write_proposal_json',
                        write_then_term)
    with pytest.raises(ProposalRunInterrupted) as e:
        run(img_dir, str(tmp_path))
    assert e.value.exit_code == 143 and e.value.summary is None
    assert tmp_files(str(tmp_path)) == []
    assert not osp.exists(str(tmp_path / 'out.json'))
    monkeypatch.undo()
    out, s = run(img_dir, str(tmp_path))
    assert s.already_done == 6 and json.loads(read(out))['images']


def test_cli_maps_an_interrupted_run_to_exit_143(img_dir, tmp_path,
                                                 monkeypatch):
    """The library raises ProposalRunInterrupted on SIGTERM (never exits
    the process); the command line turns it into the shell's code 143."""
    import ccop_plugin.proposals as proposals

    def stopped(*a, **k):
        raise ProposalRunInterrupted('interrupted: 2 images saved')

    monkeypatch.setattr(proposals, 'run_proposals', stopped)
    assert selective_search_main([img_dir, '--out', str(tmp_path / 'x.json'),
                                  '--workers', '1']) == 143


def test_out_that_is_an_input_is_refused_whatever_the_flags(img_dir,
                                                            tmp_path,
                                                            capsys):
    """``--out`` naming the run's own ``--ann-file`` (for COCO: the
    instances file) or one of its images would replace an input with
    proposals: refused before any work, with --overwrite too."""
    names = sorted(e.file_name for e in list_image_dir(img_dir))
    ann = {'images': [{'id': i + 1, 'file_name': n, 'width': W,
                       'height': H} for i, n in enumerate(names)],
           'annotations': [], 'categories': [{'id': 1, 'name': 'a'}]}
    ann_file = str(tmp_path / 'instances.json')
    with open(ann_file, 'w') as f:
        json.dump(ann, f)
    before = read(ann_file)
    os.symlink(ann_file, str(tmp_path / 'link.json'))
    image = osp.join(img_dir, names[0])
    for out in (ann_file, str(tmp_path / 'link.json'),
                osp.join(img_dir, '..', 'instances.json'), image):
        for extra in ([], ['--overwrite']):
            assert selective_search_main(
                [img_dir, '--ann-file', ann_file, '--out', out,
                 '--workers', '1', '--no-progress'] + extra) == 1
            msg = capsys.readouterr().err
            assert msg.startswith('error: ') and msg.count('\n') == 1, msg
            assert 'input' in msg and out in msg, msg
    assert read(ann_file) == before
    assert not glob.glob(str(tmp_path / '*.work'))
