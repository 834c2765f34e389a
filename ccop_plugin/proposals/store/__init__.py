"""Resumable on-disk state of a proposal run and the final COCO-style JSON.

A run keeps its state in a *work dir*::

    <work_dir>/meta.json                   settings + digest of the image list
    <work_dir>/images.json                 the ordered image list
                                           [[id, file_name], ...]
    <work_dir>/shard-00003-of-00016.jsonl  one JSON line per finished image
    <work_dir>/written.json                outputs this work dir wrote (a
                                           utils.owned_folder Manifest with
                                           their SHA-256), so a rerun may
                                           replace them while unchanged

Shard files are append-only and flushed after every image, so a killed run
loses at most the image being written; a truncated last line is dropped on
restart. A line is either a result::

    {"k": 7, "id": 8, "file_name": "a/b.jpg", "width": 640, "height": 480,
     "boxes": [[x, y, w, h], ...], "stage": 0, "n_cand": 812, "sec": 2.91,
     "src": [123456, 1700000000000000000]}

or a failure (unreadable / corrupt image)::

    {"k": 7, "id": 8, "file_name": "a/b.jpg", "error": "...", "src": [...]}

``src`` is the image file's ``[size, mtime_ns]`` when it was read (``null``
if it could not be stat'ed): a resumed run recomputes an image whose file
changed since. Optional fields: ``search_hw`` (the ``[height, width]`` the
search ran at when the cost bounds shrank the image) and ``redo`` (how many
times the image was recomputed: the record with the highest ``redo`` wins;
at equal ``redo`` a result wins over a failure).

The whole work dir is locked while a run uses it (the package's
:class:`~ccop_plugin.utils.folder_lock.FolderLock`: shared by the shards of a
run, exclusive while ``--overwrite`` empties it; its holder file is not
state). ``meta.json`` is a checked record with its writer tag
(:mod:`ccop_plugin.utils.records`).

:func:`merge_work_dir` checks that every image of the list has exactly one
result or failure and writes the COCO-style proposal JSON atomically
(:func:`ccop_plugin.proposals.proposal_file.write_proposal_file`).

The package: :mod:`.work_dir` (layout, lock, meta, outputs written),
:mod:`.records` (shard-file records, writer, the record that counts) and
:mod:`.merge` (the final file).
"""
from .merge import collect_records, failures_report_path, merge_work_dir
from .records import (
    ShardWriter,
    boxes_to_record,
    drop_partial_tail,
    finished_records,
    iter_records,
    source_stamp,
)
from .work_dir import (
    SHARD_RE,
    WORK_FILE_RE,
    WORK_FORMAT,
    ProposalStateError,
    WorkDirInUseError,
    WorkDirLock,
    check_out_not_input,
    check_out_replaceable,
    check_writable,
    clear_work_dir,
    load_work_dir,
    prepare_work_dir,
    record_written,
    shard_files,
    shard_path,
)

__all__ = [
    'SHARD_RE', 'WORK_FILE_RE', 'WORK_FORMAT', 'ProposalStateError',
    'ShardWriter', 'WorkDirInUseError', 'WorkDirLock', 'boxes_to_record',
    'check_out_not_input', 'check_out_replaceable',
    'check_writable', 'clear_work_dir', 'collect_records',
    'drop_partial_tail', 'failures_report_path', 'finished_records',
    'iter_records', 'load_work_dir', 'merge_work_dir', 'prepare_work_dir',
    'record_written', 'shard_files', 'shard_path', 'source_stamp',
]
