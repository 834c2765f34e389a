"""Time CCOP's box-aware two-view pipeline against mmpretrain's MoCo v2 one.

One data-loader worker (one process, one thread by default) runs both
pipelines of the configs over the same generated JPEGs, image by image::

    python tools/benchmark_pipelines.py --num-images 64 --repeats 3

Prints a markdown table (images/s, ms/image, boxes kept, relative rate).
"""
import sys

from ccop_plugin.benchmarks.pipelines import (
    build_parser,
    run_pipeline_benchmark,
)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_pipeline_benchmark(args)
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
