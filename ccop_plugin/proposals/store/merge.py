"""Merging a complete work dir into the final COCO-style proposal file."""
import os
import os.path as osp
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from ...utils.fileio import atomic_write_text
from ..proposal_file import write_proposal_file
from ..sources import ImageEntry
from .records import _pick_records
from .work_dir import (
    ProposalStateError,
    WorkDirLock,
    check_out_replaceable,
    check_writable,
    load_work_dir,
    record_written,
)


# --------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------
def collect_records(work_dir: str, entries: Sequence[ImageEntry]
                    ) -> Tuple[Dict[str, Dict[str, Any]],
                               Dict[str, Dict[str, Any]], Dict[str, int]]:
    """Gather results and failures of all shard files; check consistency.

    Returns:
        tuple: ``(results, failures, stats)`` keyed by file name. Of several
        records of an image the one with the highest ``redo`` counts (an
        image recomputed because its file changed); at equal ``redo`` a
        result beats a failure (``--retry-failed`` on old work dirs).

    Raises:
        ProposalStateError: a record names an image outside the list, or an
            image has two results.
    """
    known = {e.file_name for e in entries}
    stats: Dict[str, int] = {}
    best, where, dups = _pick_records(work_dir, stats)
    unknown = [(n, where[n]) for n in best if n not in known]
    if unknown:
        raise ProposalStateError(
            f'{len(unknown)} records in {work_dir} name images that are not '
            f'in its image list, e.g. {unknown[:3]}')
    if dups:
        raise ProposalStateError(
            f'{len(dups)} images have more than one result in {work_dir} '
            f'(two runs wrote the same images?), e.g. {dups[:3]}')
    results: Dict[str, Dict[str, Any]] = {}
    failures: Dict[str, Dict[str, Any]] = {}
    for name, rec in best.items():
        if 'error' in rec:
            failures[name] = rec
        else:
            rec['boxes'] = np.asarray(rec.get('boxes', []),
                                      dtype=np.float64).reshape(-1, 4)
            results[name] = rec
    return results, failures, stats


def failures_report_path(out: str) -> str:
    root, _ = osp.splitext(out)
    return root + '.failures.txt'


def merge_work_dir(work_dir: str, out: str, allow_missing: bool = False,
                   log=print, overwrite: bool = False) -> Dict[str, Any]:
    """Check a work dir is complete and write the final JSON + failure report.

    Every image of the work dir's list must have exactly one result or a
    recorded failure. Failed images are left out of the JSON and listed in
    ``<out stem>.failures.txt`` (tab-separated file name and reason).

    Args:
        work_dir: Work dir of the run (all shards).
        out: Path of the COCO-style JSON to write.
        allow_missing: Write what there is even if images are missing.
        log: Print function.
        overwrite: Replace ``out`` even if another run wrote it.

    Returns:
        dict: Counts (images, annotations, failures, missing, images shrunk
        by the cost bounds) and paths.

    Raises:
        ProposalStateError: images are missing (unless ``allow_missing``),
            duplicated, or unknown; ``out`` exists and was not written from
            this work dir (unless ``overwrite``); ``out`` is not writable.
    """
    if not osp.isdir(work_dir):
        raise ProposalStateError(f'{work_dir} is not a proposal work dir '
                                 '(no such folder)')
    with WorkDirLock(work_dir):  # not while --overwrite is clearing it
        return _merge_work_dir(work_dir, out, allow_missing, log, overwrite)


def _merge_work_dir(work_dir: str, out: str, allow_missing: bool, log,
                    overwrite: bool) -> Dict[str, Any]:
    meta, entries = load_work_dir(work_dir)
    check_writable(out, '--out')
    check_out_replaceable(work_dir, out, overwrite)
    results, failures, stats = collect_records(work_dir, entries)
    missing = [e.file_name for e in entries
               if e.file_name not in results and e.file_name not in failures]
    if missing and not allow_missing:
        raise ProposalStateError(
            f'{len(missing)} of {len(entries)} images have no result yet in '
            f'{work_dir} (e.g. {missing[:3]}); run the missing shards again '
            '(finished images are skipped) and merge again')
    info = dict(description='selective-search object proposals',
                tool='ccop_plugin tools/selective_search.py',
                config=meta.get('config'), num_failed=len(failures))
    try:
        counts = write_proposal_file(out, entries, results, info)
        record_written(work_dir, out)
    except OSError as e:  # disk full, ...: the temporary file is gone
        raise ProposalStateError(
            f'cannot write {out} ({e.strerror or e}); it was left as it was. '
            f'Free space and run the same command again (the results in '
            f'{work_dir} are kept)') from None
    report = failures_report_path(out)
    if failures:
        lines = [f'{e.file_name}\t{failures[e.file_name]["error"]}'
                 for e in entries if e.file_name in failures]
        atomic_write_text(report, '\n'.join(lines) + '\n')
    elif osp.exists(report):
        os.remove(report)
    summary = dict(out=out, images=counts['images'],
                   annotations=counts['annotations'], failures=len(failures),
                   failures_report=report if failures else None,
                   missing=len(missing), skipped_lines=stats.get('bad', 0),
                   partial_lines=stats.get('partial', 0),
                   bounded=sum(1 for r in results.values()
                               if r.get('search_hw')),
                   size_mb=osp.getsize(out) / 2**20)
    if failures:
        log(f'{len(failures)} unreadable images left out; listed in {report}')
    if stats.get('bad'):
        log(f'warning: {stats["bad"]} broken lines in shard files skipped')
    return summary
