"""The comparison's machine-readable record (``science.json``): its one
writer, :func:`write_science_record`, and its one reader,
:func:`read_science_record`, plus the checked JSON read and foreign-file
refusal that other records (the sweep's) share."""
import json
import math
import os.path as osp
from typing import Dict, List

from ccop_plugin.utils.fileio import atomic_write_json

#: The record's values per method and seed (fractions, as mmdet reports).
RECORD_KEYS = ('probe_acc', 'bbox_ap', 'segm_ap')
RECORD_LABELS = dict(probe_acc='probe acc', bbox_ap='bbox AP',
                     segm_ap='mask AP')


#: The format's writer tag: the name of its first writer, kept so that the
#: records written before the report module was split stay this tool's.
RECORD_WRITER = 'ccop_plugin.apis.report.write_science_record'


def _check_record(obj, path: str) -> None:
    """Raise ValueError (one line naming ``path``) unless ``obj`` is a
    science record."""
    def bad(msg):
        raise ValueError(f'{path}: not a science record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'results'}:
        bad('expected exactly the keys "protocol" and "results"')
    proto, res = obj['protocol'], obj['results']
    if not isinstance(proto, dict) or not isinstance(res, dict):
        bad('"protocol" and "results" must be objects')
    seeds = proto.get('seeds')
    if not isinstance(seeds, list) or not seeds:
        bad('protocol.seeds must be a non-empty list')
    if proto.get('methods') != list(res):
        bad('protocol.methods must list the methods of "results" in order')
    for m, vals in res.items():
        if not isinstance(vals, dict) or set(vals) != set(RECORD_KEYS):
            bad(f'results.{m} must have exactly the keys '
                f'{", ".join(RECORD_KEYS)}')
        for k in RECORD_KEYS:
            v = vals[k]
            if not isinstance(v, list) or len(v) != len(seeds):
                bad(f'results.{m}.{k} must hold one value per seed '
                    f'({len(seeds)})')
            if any(x is not None and not (isinstance(x, (int, float)) and
                                          math.isfinite(x)) for x in v):
                bad(f'results.{m}.{k} holds a value that is neither a '
                    'finite number nor null')


def read_checked_json(path: str, check) -> Dict:
    """Read a JSON record and validate it with ``check(obj, path)``; a file
    that is not JSON is one ``ValueError`` naming it."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except ValueError as e:
        raise ValueError(f'{path}: not JSON ({e})') from None
    check(obj, path)
    return obj


def refuse_foreign_record(path: str, read, writer: str, what: str,
                          hint: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record that
    ``read`` accepts and whose ``protocol.writer`` is ``writer``."""
    if not osp.lexists(path):
        return
    try:
        ours = read(path)['protocol'].get('writer') == writer
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise FileExistsError(
            f'{path} exists and is not {what} of this tool; nothing '
            f'was written: move it away or pass {hint}')


def read_science_record(path: str) -> Dict:
    """Read and check a record written by :func:`write_science_record`."""
    return read_checked_json(path, _check_record)


def check_record_path(path: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record of
    :func:`write_science_record` (checked before a long run too)."""
    refuse_foreign_record(path, read_science_record, RECORD_WRITER,
                          'a record', 'another record path')


def write_science_record(path: str, protocol: Dict,
                         results: Dict[str, Dict[str, List]]) -> Dict:
    """Write the comparison's record (the only writer of the format)::

        {"protocol": {<every setting of the run; seeds, methods, machine>},
         "results": {"<method>": {"probe_acc": [one value per seed],
                                  "bbox_ap": [...], "segm_ap": [...]}}}

    Values are fractions (COCO mAP and accuracy as computed), null where not
    measured. The file is replaced atomically, and only when it is a record
    of this writer (another file there is an error, nothing is written).
    """
    protocol = dict(protocol, writer=RECORD_WRITER)
    protocol.setdefault('methods', list(results))
    obj = dict(protocol=protocol,
               results={m: {k: list(v[k]) for k in RECORD_KEYS}
                        for m, v in results.items()})
    _check_record(obj, path)
    check_record_path(path)
    atomic_write_json(path, obj, allow_nan=False)
    return obj
