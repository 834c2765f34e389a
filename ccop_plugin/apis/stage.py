"""The main job's cached stages: a result is reused only when it was made
with the same settings.

A stage's folder is ``<work_dir>/<name>``; its finished record is
``<name>/stage.json``. :class:`Stage` keys a stage on the settings it
depends on and on the keys of the stages it reads
(:func:`ccop_plugin.utils.owned_folder.settings_key`); a step object (see
:mod:`ccop_plugin.apis.stages`) says what those settings are and how to
compute the result, and :func:`run_step` ties the two together.
"""
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, Optional, Sequence

from ccop_plugin.utils.fileio import atomic_write_json
from ccop_plugin.utils.machine import machine_summary
from ccop_plugin.utils.owned_folder import settings_diff, settings_key
from ccop_plugin.utils.records import read_record
from .job_config import log

__all__ = ['Stage', 'run_step', 'settings_diff', 'stopped_by_user']

#: A shell's exit status for a process stopped by Ctrl-C (SIGINT).
STOPPED_BY_USER = 130


class Stage:
    """A stage whose finished result is recorded in ``<dir>/stage.json``.

    Every stage is keyed on the settings it depends on and on the keys of
    the stages it reads (``upstream``): ``key`` is a hash of both. A finished
    stage is reused only when its recorded key matches; otherwise it is
    recomputed (``stage X: settings changed (...), recomputing``), and so is
    every stage after it, whose keys contain this one's. The previous output
    folder is moved to ``<work_dir>/superseded/<name>-<key>`` first (nothing
    is deleted); an unfinished stage with other settings starts afresh the
    same way instead of resuming (the key of a started stage is kept in
    ``<work_dir>/.stages/<name>.json``).

    Moving a folder aside is safe only while no other job uses the work dir:
    the callers hold the work dir's lock for the whole run
    (:mod:`ccop_plugin.apis.main_job`).

    ``run`` returns the record plus ``run``: ``'reused'``, ``'computed'`` or
    ``'recomputed (<what changed>)'`` (not stored).
    """

    def __init__(self, work_dir: str, name: str,
                 settings: Optional[Dict] = None,
                 upstream: Sequence[Dict] = ()):
        self.name = name
        self.work_dir = work_dir
        self.dir = osp.join(work_dir, name)
        self.marker = osp.join(self.dir, 'stage.json')
        # key of a started stage; outside its folder, which may have to
        # start empty (the data generator refuses a folder of other files)
        self.started = osp.join(work_dir, '.stages', f'{name}.json')
        self.settings = dict(
            settings or {},
            upstream={u['stage']: u['key'] for u in upstream})
        self.key = settings_key(self.settings)

    @staticmethod
    def _read(path: str) -> Optional[Dict]:
        return read_record(path) if osp.isfile(path) else None

    def done(self) -> Optional[Dict]:
        """The finished record when its key matches, else None."""
        found = self._read(self.marker)
        if found is not None and found.get('key') == self.key:
            return found
        return None

    def _supersede(self, old_key: Optional[str]) -> str:
        dest_dir = osp.join(self.work_dir, 'superseded')
        os.makedirs(dest_dir, exist_ok=True)
        base = osp.join(dest_dir, f'{self.name}-{old_key or "unkeyed"}')
        dest, n = base, 1
        while osp.exists(dest):
            n += 1
            dest = f'{base}.{n}'
        os.replace(self.dir, dest)
        return dest

    def _prepare(self) -> str:
        """Resume, start or supersede; the run status before computing."""
        found = self._read(self.marker)
        old = found if found is not None else self._read(self.started)
        if old is not None and old.get('key') == self.key:
            return 'computed'  # unfinished with these settings: resume
        if old is None and not (osp.isdir(self.dir) and os.listdir(self.dir)):
            return 'computed'
        why = settings_diff(old.get('settings') if old else None,
                            self.settings)
        moved = ''
        if osp.isdir(self.dir):
            dest = self._supersede(old.get('key') if old else None)
            moved = f' (previous output moved to {dest})'
        log(f'stage {self.name}: settings changed ({why}), '
            f'recomputing{moved}')
        return f'recomputed ({why})'

    def run(self, fn: Callable[[], Dict], all_ranks: bool = False) -> Dict:
        """The stage's record: reused, or computed by ``fn``.

        In a distributed job (torchrun, ``--launcher pytorch``) rank 0
        alone keeps the books (supersedes, records) and, unless
        ``all_ranks`` (the training runs, which every rank joins), alone
        computes; the other ranks wait for it and read its record.
        """
        from mmengine.dist import barrier, get_rank
        found = self.done()
        if found is not None:
            log(f'{self.name}: done before, reusing (same settings, '
                f'{self.marker})')
            return dict(found, run='reused')
        main = get_rank() == 0
        if main:
            status = self._prepare()
            os.makedirs(self.dir, exist_ok=True)
            atomic_write_json(self.started, dict(key=self.key,
                                                 settings=self.settings),
                              default=str)
            log(f'{self.name}: start')
        barrier()  # every rank sees the prepared folder
        t0 = time.time()
        result = dict(fn()) if main or all_ranks else {}
        if main:
            result['seconds'] = round(time.time() - t0, 1)
            result['machine'] = machine_summary()  # where it was computed
            result.update(stage=self.name, key=self.key,
                          settings=self.settings)
            atomic_write_json(self.marker, result, default=str)
            log(f'{self.name}: finished in {result["seconds"]:.0f} s')
        barrier()  # the record is written
        if not main:
            found = self.done()
            if found is None:
                raise RuntimeError(f'{self.name}: rank 0 recorded no '
                                   f'result in {self.marker}')
            return dict(found, run='computed by rank 0')
        return dict(result, run=status)


def run_step(work_dir: str, step, upstream: Sequence[Dict] = ()) -> Dict:
    """Run a step object (``name``, ``settings()``, ``compute(out_dir)``;
    ``all_ranks = True``: every rank of a distributed job computes it) as
    a cached :class:`Stage` of ``work_dir``."""
    stage = Stage(work_dir, step.name, step.settings(), upstream)
    return stage.run(lambda: step.compute(stage.dir),
                     all_ranks=getattr(step, 'all_ranks', False))


def stopped_by_user(tool: str) -> int:
    """What a staged tool says when Ctrl-C stops it: one line (finished
    stages are kept, the stage that was running is redone by the same
    command) and the shell's status for SIGINT, :data:`STOPPED_BY_USER`."""
    print(f'{tool}: stopped (Ctrl-C); every finished stage is kept and the '
          'same command resumes after them', file=sys.stderr)
    return STOPPED_BY_USER
