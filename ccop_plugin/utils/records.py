"""JSON records: the one way to read, check and replace a record file.

A record is a JSON object written by one function of the package (its
*writer*), which tags it with its own name under ``protocol.writer`` (or a
top-level ``writer``). The rules every record format follows:

* :func:`read_record` reads a file and checks it with the format's
  validator; a file that is not JSON or fails the check is one
  ``ValueError`` naming the file and the problem;
* :func:`refuse_foreign` refuses (``FileExistsError``, one line) to replace a
  file that is not a record of the same writer, so a user's file at the
  record's path is never overwritten; a long run calls it before it starts;
* :func:`write_record` tags, checks, refuses foreign files and replaces the
  file atomically (:mod:`ccop_plugin.utils.fileio`).
"""
import json
import os.path as osp
from typing import Any, Callable, Dict, Optional

from .fileio import atomic_write_json

__all__ = ['read_record', 'record_writer', 'refuse_foreign', 'write_record']

#: ``check(obj, path)`` raises ``ValueError`` naming ``path`` when ``obj``
#: is not a record of the format.
Check = Callable[[Any, str], None]


def read_record(path: str, check: Optional[Check] = None) -> Dict:
    """Read the JSON record ``path`` and validate it with ``check``."""
    try:
        with open(path, encoding='utf-8') as f:
            obj = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path}: not JSON ({e})') from None
    if check is not None:
        check(obj, path)
    return obj


def record_writer(obj: Any) -> Optional[str]:
    """The writer tag of a record (``protocol.writer`` or ``writer``)."""
    if not isinstance(obj, dict):
        return None
    proto = obj.get('protocol')
    if isinstance(proto, dict) and 'writer' in proto:
        return proto['writer']
    return obj.get('writer')


def refuse_foreign(path: str, writer: str, check: Optional[Check] = None,
                   what: str = 'a record',
                   hint: str = 'another path') -> None:
    """Raise ``FileExistsError`` unless ``path`` is free or holds a valid
    record tagged ``writer``."""
    if not osp.lexists(path):
        return
    try:
        ours = record_writer(read_record(path, check)) == writer
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise FileExistsError(
            f'{path} exists and is not {what} of this tool; nothing '
            f'was written: move it away or pass {hint}')


def write_record(path: str, obj: Dict, writer: str,
                 check: Optional[Check] = None, what: str = 'a record',
                 hint: str = 'another path', **dumps_kwargs) -> Dict:
    """Tag ``obj`` with ``writer``, check it, and replace ``path`` with it
    atomically -- only when ``path`` is free or a record of ``writer``.

    The tag goes into ``obj['protocol']['writer']`` when ``obj`` has a
    ``protocol`` object, else into ``obj['writer']``. Returns the record.
    """
    obj = dict(obj)
    if isinstance(obj.get('protocol'), dict):
        obj['protocol'] = dict(obj['protocol'], writer=writer)
    else:
        obj['writer'] = writer
    if check is not None:
        check(obj, path)
    refuse_foreign(path, writer, check, what, hint)
    atomic_write_json(path, obj, **dumps_kwargs)
    return obj
