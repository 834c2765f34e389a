"""The proposal run's interface: its options, its summary, its stop.

:class:`RunOptions` goes into :func:`.runner.run_proposals`,
:class:`RunSummary` comes out (:func:`format_summary` prints it), and a run
stopped by SIGTERM raises :class:`ProposalRunInterrupted`, which command-line
front ends map to its ``exit_code``. Nothing here loads OpenCV, so callers
can import these names cheaply.
"""
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

Task = Tuple[int, int, str, str]  # (index, image id, file_name, path)
WorkerFn = Callable[[Task, Any], Dict[str, Any]]


class ProposalRunInterrupted(BaseException):
    """A proposal run was stopped by SIGTERM (or its workers by a stop
    signal). The finished images are saved; rerunning the same command
    resumes. Command-line front ends exit with :attr:`exit_code` (143, the
    shell's code for SIGTERM). A ``BaseException``, like
    :class:`KeyboardInterrupt`, so that no ``except Exception`` of a caller
    turns a requested stop into a failure.

    Attributes:
        summary: The run's :class:`RunSummary` when the search loop was
            stopped, ``None`` when the stop came before or after it.
    """
    exit_code = 143

    def __init__(self, message: str,
                 summary: Optional['RunSummary'] = None):
        super().__init__(message)
        self.summary = summary


@dataclass
class RunOptions:
    """How :func:`run_proposals` runs.

    Attributes:
        out: Final JSON path. Written when the run is unsharded (``n == 1``);
            sharded runs are merged with :func:`.store.merge_work_dir`
            afterwards.
            Checked up front either way: it must be writable, and an
            existing file must have been written from this work dir (unless
            ``overwrite``).
        workers: Worker processes; ``None`` = all cores. 1 runs in-process.
        shard: ``(i, n)``: process images ``k`` with ``k % n == i``.
        retry_failed: Process images recorded as failures again.
        overwrite: Empty an existing work dir first (refused while another
            run uses it, or if it holds files that are not proposal state)
            and replace an existing ``out`` written by another run.
        progress: Show a tqdm progress bar (rate and ETA).
        source: Description of the input stored in the work dir's meta.
        log: Print function for messages and the summary.
        worker_fn: Picklable per-image ``fn(task, cfg) -> record``
            (``None``: :func:`.runner.process_image`; tests inject
            failures through it).
        start_method: multiprocessing start method (default: forkserver).
        inputs: Input files of the run (the ``--ann-file`` image list):
            an ``out`` naming one of them, or one of the images, is refused
            whatever ``overwrite`` says.
    """
    out: Optional[str] = None
    workers: Optional[int] = None
    shard: Tuple[int, int] = (0, 1)
    retry_failed: bool = False
    overwrite: bool = False
    progress: bool = True
    source: Optional[Dict[str, Any]] = None
    log: Callable[[str], None] = print
    worker_fn: Optional[WorkerFn] = None
    start_method: Optional[str] = None
    inputs: Sequence[Optional[str]] = ()

    def worker_count(self) -> int:
        """``workers``, with ``None`` resolved to the usable cores."""
        if self.workers is not None:
            return max(1, int(self.workers))
        if hasattr(os, 'sched_getaffinity'):
            return max(1, len(os.sched_getaffinity(0)))
        return os.cpu_count() or 1


@dataclass
class RunSummary:
    """What one :func:`run_proposals` call did (:func:`format_summary`
    prints it; :meth:`to_dict` for records)."""
    shard: str
    images_in_shard: int
    already_done: int
    processed: int = 0
    failed: int = 0
    failures: List[Tuple[str, str]] = field(default_factory=list)
    workers: int = 1
    proposals_per_image: float = 0.0
    min_proposals: int = 0
    max_proposals: int = 0
    zero_proposal_images: int = 0
    stages: Dict[int, int] = field(default_factory=dict)
    bounded: int = 0
    bounded_files: List[str] = field(default_factory=list)
    search_s_per_image: float = 0.0
    work_s: float = 0.0
    first_result_s: Optional[float] = None
    setup_s: float = 0.0
    images_per_s: float = 0.0
    interrupted: bool = False
    merge: Optional[Dict[str, Any]] = None
    changed: int = 0
    changed_files: List[str] = field(default_factory=list)
    vanished: int = 0
    wall_s: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def format_summary(summary: RunSummary) -> str:
    """Human-readable run summary."""
    s = summary.to_dict()
    lines = [
        f'--- selective search summary (shard {s["shard"]}) ---',
        f'images in shard      {s["images_in_shard"]} '
        f'({s["already_done"]} done before, {s["processed"]} now)',
        f'failed (unreadable)  {s["failed"]}',
        f'proposals / image    {s["proposals_per_image"]:.1f} '
        f'(min {s["min_proposals"]}, max {s["max_proposals"]}, '
        f'{s["zero_proposal_images"]} images with none)',
    ]
    if s['stages'] and set(s['stages']) != {0}:
        lines.append(f'filter stage counts  {s["stages"]} '
                     '(0 main, 1-2 relaxed, 3 nothing left / whole image)')
    lines += [
        f'time                 {s["work_s"]:.1f} s with {s["workers"]} '
        f'worker(s): {s["images_per_s"]:.2f} img/s, '
        f'{s["search_s_per_image"]:.2f} s/img per worker',
    ]
    if s.get('bounded'):
        lines.append(
            f'shrunk for cost      {s["bounded"]} images (--max-pixels / '
            '--max-search-aspect), e.g. '
            + ', '.join(s['bounded_files'][:5]))
    for name, err in s['failures'][:10]:
        lines.append(f'  failed: {name}: {err}')
    if len(s['failures']) > 10:
        lines.append(f'  ... and {len(s["failures"]) - 10} more')
    m = s.get('merge')
    if m:
        lines.append(f'wrote {m["out"]}: {m["images"]} images, '
                     f'{m["annotations"]} proposals, {m["size_mb"]:.1f} MiB')
        if m['failures_report']:
            lines.append(f'failure report       {m["failures_report"]}')
    return '\n'.join(lines)
