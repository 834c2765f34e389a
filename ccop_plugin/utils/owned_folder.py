"""Keyed, owned folders: what a resumable tool keeps about the folder it
writes.

Three questions every resumable writer of the package answers the same way:

* *Was this made with the same settings?* :func:`settings_key` hashes a
  settings record (the key a result is reused under); :func:`settings_diff`
  says in one line what changed between two records.
* *May I replace this file?* :class:`Manifest` lists the files the tool
  wrote in its folder (``<folder>/<manifest name>``), optionally with their
  SHA-256, so that a file the tool did not write -- or one a user changed
  since -- is refused instead of overwritten.
* *Is another run writing here?* :class:`FolderLock` (re-exported from
  :mod:`ccop_plugin.utils.folder_lock`) holds the folder for a whole run.

Users: the main job's stages and outputs (:mod:`ccop_plugin.apis.stage`,
:mod:`ccop_plugin.apis.main_job`), the dataset generator's manifest and
lock (:mod:`ccop_plugin.datagen.coco_writer`) and the proposal store's
work-dir lock (:mod:`ccop_plugin.proposals.store.work_dir`). A folder's
lock writes its holder file (``folder_lock.HOLDER_FILE``) into it while
held exclusively: a user of this module never counts it as a foreign file.
"""
import hashlib
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional

from .fileio import atomic_write_json
from .folder_lock import FolderInUseError, FolderLock

__all__ = [
    'FolderInUseError', 'FolderLock', 'Manifest', 'file_sha256',
    'settings_diff', 'settings_key'
]


def settings_key(settings: Dict) -> str:
    """16 hex digits of the SHA-256 of ``settings`` (sorted JSON; values
    JSON cannot hold are written as ``str``)."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _flat(d: Dict, prefix: str = '') -> Dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def settings_diff(old: Optional[Dict], new: Dict) -> str:
    """``'a 1 -> 2, b.c unset -> 3'``: what changed between two settings
    records (nested keys dotted); ``old=None``: an unkeyed earlier result."""
    if old is None:
        return 'recorded before stage keys'
    a, b = _flat(old), _flat(new)
    parts = [f'{k} {a.get(k, "unset")} -> {b.get(k, "unset")}'
             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ', '.join(parts) or 'same settings'


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's content."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


class Manifest:
    """The files a tool wrote in ``folder``, kept in ``folder/name``.

    The file is ``{"tool": ..., "note": ..., "files": [relative paths]}``
    plus ``"sha256": {path: digest}`` for files recorded with their content
    (:meth:`record`). A tool claims the files it is about to write
    (:meth:`claim`, before writing them), records their content after
    (:meth:`record`), and asks :meth:`foreign` which of the paths it wants
    to write are in the way.

    Args:
        folder: The owned folder.
        name: File name of the manifest inside ``folder``.
        tool: Who writes the folder (stored, for people reading it).
        note: What the list means (stored).
    """

    def __init__(self, folder: str, name: str, tool: str,
                 note: str = 'files this tool wrote; it replaces or deletes '
                 'only these'):
        self.folder = folder
        self.path = osp.join(folder, name)
        self.tool = tool
        self.note = note
        self._files: Optional[List[str]] = None
        self._sha: Dict[str, str] = {}

    @property
    def exists(self) -> bool:
        return osp.isfile(self.path)

    def _load(self) -> None:
        if self._files is not None:
            return
        self._files, self._sha = [], {}
        if not self.exists:
            return
        try:
            with open(self.path, encoding='utf-8') as f:
                obj = json.load(f)
            files = [osp.normpath(p) for p in obj['files']]
            sha = {osp.normpath(k): str(v)
                   for k, v in (obj.get('sha256') or {}).items()}
        except (OSError, ValueError, KeyError, TypeError,
                AttributeError) as e:
            self._files = None
            raise FileExistsError(
                f'{self.path}: unreadable manifest ({e}); remove it only if '
                f'everything in {self.folder} may be replaced, or use '
                'another folder') from None
        self._files, self._sha = files, sha

    def files(self) -> List[str]:
        """The relative paths the manifest lists ([] without a manifest)."""
        self._load()
        return list(self._files)

    def _rel(self, path: str) -> str:
        if osp.isabs(path):
            path = osp.relpath(path, self.folder)
        return osp.normpath(path)

    def lists(self, path: str) -> bool:
        """Whether the manifest lists ``path`` (relative or absolute)."""
        self._load()
        return self._rel(path) in self._files

    def foreign(self, paths: Iterable[str]) -> List[str]:
        """Those of ``paths`` (relative to the folder, or absolute) that
        exist and were not written by the tool: not listed, or changed since
        :meth:`record` stored their content."""
        self._load()
        owned = set(self._files)
        out = []
        for p in paths:
            rel = self._rel(p)
            full = osp.join(self.folder, rel)
            if not osp.lexists(full):
                continue
            if rel not in owned:
                out.append(rel)
            elif rel in self._sha and (not osp.isfile(full) or
                                       file_sha256(full) != self._sha[rel]):
                out.append(rel)
        return out

    def write(self, files: Iterable[str]) -> None:
        """Replace the list by ``files`` (digests of dropped files go)."""
        self._load()
        self._files = sorted({self._rel(p) for p in files})
        self._sha = {k: v for k, v in self._sha.items() if k in self._files}
        obj = dict(tool=self.tool, note=self.note, files=self._files)
        if self._sha:
            obj['sha256'] = self._sha
        atomic_write_json(self.path, obj, indent=1, end='')

    def claim(self, paths: Iterable[str]) -> None:
        """Add ``paths`` to the list (before writing them)."""
        self.write(self.files() + [self._rel(p) for p in paths])

    def record(self, paths: Iterable[str]) -> None:
        """Add ``paths`` with the digests of their current content (after
        writing them); paths that do not exist are skipped."""
        self._load()
        rels = [self._rel(p) for p in paths]
        for rel in rels:
            full = osp.join(self.folder, rel)
            if osp.isfile(full):
                self._sha[rel] = file_sha256(full)
        self.write(self._files + [r for r in rels if r in self._sha])
