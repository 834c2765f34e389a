"""The measurements behind ``tools/benchmark_*.py``.

* :mod:`.pipelines`: images/s of one data-loader worker running CCOP's
  box-aware pipeline and MoCo v2's, both read from the packaged configs;
* :mod:`.pretrain_step`: CCOP's and MoCo v2's training steps interleaved in
  one process, their FLOPs and CCOP's profiled breakdown (the timing in
  :mod:`.pretrain_timing`, the table and record in :mod:`.pretrain_report`);
* :mod:`.selective_search`: the proposal tool's parallel speed-up, the
  recall of scaled-down searches and the NMS step (the runs in
  :mod:`.selective_search_runs`, the tables and record in
  :mod:`.selective_search_report`);
* :mod:`.proposal_recall`: recall and AR of the proposal sources on the
  labelled demo split.

Each module holds its tool's options (``build_parser`` / ``parse_args``)
and a ``run_*`` function that raises instead of exiting; the tools only
turn those errors into exit codes. Nothing is imported here, so ``import
ccop_plugin`` never loads a benchmark.
"""
