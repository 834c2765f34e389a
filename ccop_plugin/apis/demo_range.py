"""What a user should expect from the demo (``make demo``), in one place.

The demo's AP is exact on one machine: the same command gives the same
figures value for value. Across machines it is not: torch's CPU kernels
depend on the processor (ATen's vectorised kernels on its CPU capability,
convolutions on oneDNN's ISA; see :mod:`ccop_plugin.utils.machine`), and the
last-bit differences grow over 200 pre-training iterations and 6 fine-tuning
epochs into AP differences as large as those between run seeds. So the
demo's figures come with the range measured over run seeds and forced
instruction sets (``tools/demo_spread.py``, record
``docs/benchmarks/demo_spread.json``; a test keeps the two equal), and the
report says whether a run lies inside it.
"""
from typing import Dict, List

from .tables import AP_KEYS

#: The demo's settings (``MainJobConfig``'s defaults; the run seed, work dir
#: and proposal workers aside): the range holds for these only.
DEMO_SETTINGS = dict(seed=0, num_unlabeled=200, num_train=120, num_val=40,
                     img_size=128, num_test=0, pretrain_iters=200,
                     pretrain_batch=16, finetune_epochs=6, with_fpn=True,
                     base_channels=None)

#: The measured expectation (AP x100, rounded to 0.1), written from
#: ``docs/benchmarks/demo_spread.json`` (``tools/demo_spread.py``):
#: ``range``: lowest and highest value over every run of the record (run
#: seeds x instruction sets); ``reference``: the exact figures of the
#: reference machine with run seed 0 (what ``make demo`` prints there).
DEMO_EXPECTED = dict(
    record='docs/benchmarks/demo_spread.json',
    runs=2,
    range={'bbox AP': (8.7, 12.6), 'bbox AP50': (18.5, 24.2),
           'bbox AP75': (7.3, 12.6), 'mask AP': (6.6, 9.2),
           'mask AP50': (15.0, 20.6), 'mask AP75': (4.4, 7.6)},
    reference=dict(
        machine=('AMD EPYC (AuthenticAMD family 25 model 17 stepping 1; '
                 'avx2 avx512f avx512_bf16 avx512_vnni), torch CPU '
                 'capability AVX512, 2 torch threads of 2 usable cores, no '
                 'GPU; torch 2.13.0+cu130, mmcv 2.1.0'),
        run_seed=0,
        values={'bbox AP': 12.6, 'bbox AP50': 24.2, 'bbox AP75': 12.6,
                'mask AP': 9.2, 'mask AP50': 20.6, 'mask AP75': 7.6}),
)


def demo_settings_differ(cfg) -> List[str]:
    """The settings of ``cfg`` (a ``MainJobConfig``) that are not the
    demo's (``[]``: the expected range applies)."""
    return [f'{k}={getattr(cfg, k, None)!r} (demo: {v!r})'
            for k, v in DEMO_SETTINGS.items() if getattr(cfg, k, None) != v]


def expectation_lines(cfg, metrics: Dict[str, float],
                      expected: Dict = None) -> List[str]:
    """The report's verdict: is this run's AP within the expected range?

    Args:
        cfg: The run's ``MainJobConfig``.
        metrics (dict): mmdet's COCO metrics (fractions) of the run.
        expected (dict): Default :data:`DEMO_EXPECTED`.
    """
    expected = DEMO_EXPECTED if expected is None else expected
    rng = expected.get('range') or {}
    differ = demo_settings_differ(cfg)
    if differ:
        return ['No expected range for these settings: the measured range '
                'holds for the demo\'s settings, and this run differs in '
                + ', '.join(differ) + '.', '']
    if not rng:
        return ['No expected range has been measured yet '
                '(`tools/demo_spread.py --record`).', '']
    outside = []
    for label, key in AP_KEYS:
        if label not in rng or key not in metrics:
            continue
        lo, hi = rng[label]
        value = round(100 * metrics[key], 1)
        if not lo <= value <= hi:
            outside.append(f'{label} {value:.1f} (range {lo:.1f} to '
                           f'{hi:.1f})')
    span = ', '.join(f'{label} {lo:.1f} to {hi:.1f}'
                     for label, (lo, hi) in rng.items())
    ref = expected['reference']
    lines = [f"Expected for these settings: {span} (lowest and highest of "
             f"{expected['runs']} runs over run seeds and CPU instruction "
             f"sets, `{expected['record']}`). Figures differ between "
             'processors (CPU kernels round differently; see '
             '`docs/reproducibility.md`); on one machine a rerun gives the '
             'same figures value for value.', '']
    if outside:
        lines += ['**Outside the expected range:** ' + '; '.join(outside)
                  + '. Check the machine line below and '
                  '`docs/reproducibility.md`; a run outside the range '
                  'measured so far is not proof of a fault, but it is '
                  'worth reporting with this report attached.', '']
    else:
        lines += ['**Within the expected range** (every AP above).', '']
    if ref.get('values'):
        vals = ', '.join(f'{k} {v:.1f}' for k, v in ref['values'].items())
        lines += [f"Reference machine ({ref['machine']}), run seed "
                  f"{ref['run_seed']}: {vals}.", '']
    return lines
