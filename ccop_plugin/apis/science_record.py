"""The comparison's machine-readable record (``science.json``): its one
writer, :func:`write_science_record`, and its one reader,
:func:`read_science_record`. Reading, checking, tagging and the refusal of
foreign files are :mod:`ccop_plugin.utils.records`'."""
import math
import os.path as osp
from functools import lru_cache
from typing import Dict, List, Optional

from ccop_plugin.utils.records import read_record, refuse_foreign, write_record

#: The record's values per method and seed (fractions, as mmdet reports).
RECORD_KEYS = ('probe_acc', 'bbox_ap', 'segm_ap')
RECORD_LABELS = dict(probe_acc='probe acc', bbox_ap='bbox AP',
                     segm_ap='mask AP')
#: Values a method may add, per seed: each final pre-training loss divided
#: by its chance level (image InfoNCE / ln(K + 1), RoI InfoNCE /
#: ln(K_roi + 1), intra-image triplet loss / its margin); 1 is chance.
OVER_CHANCE_KEYS = ('infonce_over_chance', 'roi_infonce_over_chance',
                    'intra_over_chance')
#: The probe's positive control: a row with ``probe_acc`` only.
SUPERVISED = 'supervised'

#: The format's writer tag: the name of its first writer, kept so that the
#: records written before the report module was split stay this tool's.
RECORD_WRITER = 'ccop_plugin.apis.report.write_science_record'


def chance_levels(model: Dict) -> Dict[str, float]:
    """The chance level of each logged pre-training loss of a model config
    (``loss`` / ``loss_img``: image InfoNCE, ``ln(queue_len + 1)``;
    ``loss_roi``: RoI InfoNCE, ``ln(roi_queue_len + 1)``; ``loss_intra``:
    the intra-image triplet loss, its margin -- what each is when the
    embeddings cannot tell the positive from the negatives)."""
    out = {}
    if model.get('queue_len'):
        out['loss'] = out['loss_img'] = math.log(model['queue_len'] + 1)
    if model.get('roi_queue_len') and model.get('roi_head') is not None:
        out['loss_roi'] = math.log(model['roi_queue_len'] + 1)
    if model.get('intra_head') is not None:
        out['loss_intra'] = float(model['intra_head'].get('margin', 0.4))
    return out


def over_chance(losses: Dict[str, float],
                model: Dict) -> Dict[str, float]:
    """``{record key: final loss / its chance level}`` of one run, for the
    losses of ``losses`` (e.g. :func:`~ccop_plugin.apis.stats.final_losses`)
    that have a chance level in ``model`` (:func:`chance_levels`). The
    image InfoNCE is ``loss_img`` where the algorithm logs one (mmengine's
    ``loss`` is then the sum of all losses), else ``loss``."""
    chance = chance_levels(model)
    img = 'loss_img' if 'loss_img' in losses else 'loss'
    keys = {img: 'infonce_over_chance', 'loss_roi': 'roi_infonce_over_chance',
            'loss_intra': 'intra_over_chance'}
    return {name: losses[k] / chance[k] for k, name in keys.items()
            if k in losses and k in chance}


def pretrain_over_chance(pretrain: Optional[Dict]) -> Dict[str, float]:
    """:func:`over_chance` of a finished pre-training stage (its record:
    ``checkpoint`` in the run folder, ``config`` a packaged config name);
    ``{}`` for none (no pre-training)."""
    if not pretrain or not pretrain.get('checkpoint'):
        return {}
    from .stats import final_losses, read_scalars
    losses = final_losses(read_scalars(osp.dirname(pretrain['checkpoint'])))
    if not losses:
        return {}
    return over_chance(losses, _config_model(pretrain['config']))


@lru_cache(maxsize=None)  # a packaged config, read once per process
def _config_model(name: str) -> Dict:
    from mmengine.config import Config

    from ccop_plugin.utils import get_config_path
    return Config.fromfile(get_config_path(name)).model.to_dict()


def num_runs(protocol: Dict) -> int:
    """Values per method and key: one per run seed and data seed
    (``protocol.data_seeds``, default the one ``data_seed``), data seed
    first: ``[(d0, s0), (d0, s1), ..., (d1, s0), ...]``."""
    return len(protocol['seeds']) * len(protocol.get('data_seeds') or [0])


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
    data_seeds = proto.get('data_seeds')
    if data_seeds is not None and (not isinstance(data_seeds, list) or
                                   not data_seeds):
        bad('protocol.data_seeds must be a non-empty list')
    if proto.get('methods') != [m for m in res if m != SUPERVISED]:
        bad('protocol.methods must list the methods of "results" in order')
    n = num_runs(proto)
    for m, vals in res.items():
        need = {'probe_acc'} if m == SUPERVISED else set(RECORD_KEYS)
        allowed = need if m == SUPERVISED else need | set(OVER_CHANCE_KEYS)
        if not isinstance(vals, dict) or not need <= set(vals) <= allowed:
            bad(f'results.{m} must have the keys {", ".join(sorted(need))}'
                + ('' if m == SUPERVISED else
                   f' (and may have {", ".join(OVER_CHANCE_KEYS)})'))
        for k, v in vals.items():
            if not isinstance(v, list) or len(v) != n:
                bad(f'results.{m}.{k} must hold one value per seed ({n})')
            if any(x is not None and not (isinstance(x, (int, float)) and
                                          math.isfinite(x)) for x in v):
                bad(f'results.{m}.{k} holds a value that is neither a '
                    'finite number nor null')


def read_checked_json(path: str, check) -> Dict:
    """Read a JSON record and validate it with ``check(obj, path)`` (kept
    for the records that import it from here; see
    :func:`ccop_plugin.utils.records.read_record`)."""
    return read_record(path, check)


def refuse_foreign_record(path: str, read, writer: str, what: str,
                          hint: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record that
    ``read`` accepts and whose writer tag is ``writer`` (kept for the
    records that import it from here; see
    :func:`ccop_plugin.utils.records.refuse_foreign`)."""
    refuse_foreign(path, writer, lambda obj, p: read(p), what, hint)


def read_science_record(path: str) -> Dict:
    """Read and check a record written by :func:`write_science_record`."""
    return read_record(path, _check_record)


def check_record_path(path: str) -> None:
    """Raise FileExistsError unless ``path`` is free or holds a record of
    :func:`write_science_record` (checked before a long run too)."""
    refuse_foreign(path, RECORD_WRITER, _check_record, 'a record',
                   'another record path')


def write_science_record(path: str, protocol: Dict,
                         results: Dict[str, Dict[str, List]],
                         supervised: Optional[List] = None) -> Dict:
    """Write the comparison's record (the only writer of the format)::

        {"protocol": {<every setting of the run; seeds, data_seeds,
                       methods, machine>},
         "results": {"<method>": {"probe_acc": [one value per run],
                                  "bbox_ap": [...], "segm_ap": [...],
                                  "infonce_over_chance": [...], ...},
                     "supervised": {"probe_acc": [...]}}}

    One value per run seed, or per data seed and run seed (data seed first)
    when ``protocol.data_seeds`` is given. Values are fractions (COCO mAP
    and accuracy as computed), null where not measured; the optional
    :data:`OVER_CHANCE_KEYS` are loss / chance ratios of the pre-trained
    methods. ``supervised``: the probe's positive control per run (features
    of a supervised backbone), recorded under ``results.supervised``.
    The file is replaced atomically, and only when it is a record of this
    writer (another file there is an error, nothing is written).
    """
    protocol = dict(protocol)
    methods = [m for m in results if m != SUPERVISED]
    protocol.setdefault('methods', methods)
    res = {m: {k: list(v[k]) for k in RECORD_KEYS + OVER_CHANCE_KEYS
               if k in v} for m, v in results.items() if m != SUPERVISED}
    if supervised is not None:
        res[SUPERVISED] = dict(probe_acc=list(supervised))
    return write_record(path, dict(protocol=protocol, results=res),
                        RECORD_WRITER, _check_record, what='a record',
                        hint='another record path', allow_nan=False)
