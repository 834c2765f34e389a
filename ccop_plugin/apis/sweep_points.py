"""The named points of the protocol sweep (docs/science.md, "The protocol
sweep"), in the order they were run: ``tools/sweep_science_protocol.py
--points NAME`` runs one. A recorded point must keep its levers (a test
checks the committed record against this table), so a new idea is a new
point.
"""
from dataclasses import replace
from typing import Dict

from .protocol_sweep import Levers

#: The sweep of docs/science.md, in the order it was run.
SWEEP_POINTS: Dict[str, Levers] = {}
_w16 = Levers(width=16, crop=64, scale_min=0.2, batch=32, workers=2,
              num_unlabeled=2000, momentum=0.01, iters=600, lr=0.06)
SWEEP_POINTS.update(
    w16_c64_q256_u2000=_w16,
    w16_light_noblur_s03=replace(_w16, colour='light', blur=False,
                                 scale_min=0.3, iters=400),
    w16_light_noblur_s03_t01=replace(_w16, colour='light', blur=False,
                                     scale_min=0.3, iters=400,
                                     temperature=0.1),
    w16_light_noblur_s03_t01_lr0015=replace(
        _w16, colour='light', blur=False, scale_min=0.3, iters=400,
        temperature=0.1, lr=0.015),
    w16_nocolour_noblur_s05_t01_lr0015=replace(
        _w16, colour='none', blur=False, scale_min=0.5, iters=400,
        temperature=0.1, lr=0.015),
    w16_nocolour_noblur_s08_t01_lr0015=replace(
        _w16, colour='none', blur=False, scale_min=0.8, iters=400,
        temperature=0.1, lr=0.015),
)
# the learning point, one lever at a time put back towards the failing runs
_learns = SWEEP_POINTS['w16_nocolour_noblur_s05_t01_lr0015']
SWEEP_POINTS.update(
    w16_light_noblur_s05_t01_lr0015=replace(_learns, colour='light'),
    w16_nocolour_noblur_s03_t01_lr0015=replace(_learns, scale_min=0.3),
    w16_nocolour_noblur_s05_t02_lr0015=replace(_learns, temperature=0.2),
    w16_nocolour_noblur_s05_t01_lr006=replace(_learns, lr=0.06),
    w16_nocolour_noblur_s05_t01_lr0015_seed1=replace(_learns, seed=1),
    w16_nocolour_noblur_s05_t01_lr0015_data1=replace(_learns, data_seed=1),
    w16_nocolour_noblur_s05_t01_lr0015_seed2=replace(_learns, seed=2),
    w16_nocolour_noblur_s05_t01_lr0015_seed3=replace(_learns, seed=3),
    w16_nocolour_noblur_s05_t01_lr0015_seed4=replace(_learns, seed=4),
)

# the cost of `make science`'s grid: cheaper variants of the protocol
# (fewer images per step, fewer iterations, smaller views; the lr and
# every other lever stay the protocol's), does MoCo v2 still learn?
SWEEP_POINTS.update(
    cost_b16_i400=replace(_learns, batch=16),
    cost_b32_i200=replace(_learns, iters=200),
    cost_c48_i400=replace(_learns, crop=48),
    cost_b16_i200=replace(_learns, batch=16, iters=200),
)


# the probe sweep (--probe-data): MoCo v2 learns its instance task at the
# learning point (0.42 x chance over five run seeds) but its features probe
# no better than random convolutions (29.3 +- 2.4 % vs 30.3 +- 0.7 % on
# test). Which views make the instance task need the objects' shapes?
SWEEP_POINTS.update(
    # longer: the same task, four times the steps
    shape_i1600=replace(_learns, iters=1600),
    # no colour at all (every view grey): layout, texture and outline left
    shape_gray=replace(_learns, colour='gray'),
    # grey and blurred: the textures' fine pattern gone as well
    shape_gray_blur=replace(_learns, colour='gray', blur=True),
    # MoCo v2's colour augmentation, with the steps it needs to learn
    shape_mocov2col_i1600=replace(_learns, colour='mocov2', iters=1600),
    # 96-px views: objects near the scale the probe sees them at
    shape_c96=replace(_learns, crop=96),
)
# 96-px views were the first to probe above random init (val): the views'
# scale, towards the probe's (whole 128-px images)
SWEEP_POINTS.update(
    shape_c128=replace(_learns, crop=128),
    shape_c96_gray=replace(_learns, crop=96, colour='gray'),
    shape_c96_i1200=replace(_learns, crop=96, iters=1200),
)
# run seeds 1-4 of the 96-px point, for the control over five seeds (its
# checkpoints probed on test, tools/probe_controls.py)
SWEEP_POINTS.update({
    f'shape_c96_seed{s}': replace(SWEEP_POINTS['shape_c96'], seed=s)
    for s in range(1, 5)})
SWEEP_POINTS.update({
    f'shape_c128_seed{s}': replace(SWEEP_POINTS['shape_c128'], seed=s)
    for s in range(1, 5)})
# at the probe's scale, smaller crops: two views that share fewer objects
# must be matched by the objects they share; and MoCo v2's temperature
_c128 = SWEEP_POINTS['shape_c128']
SWEEP_POINTS.update(
    shape_c128_s03=replace(_c128, scale_min=0.3),
    shape_c128_s02=replace(_c128, scale_min=0.2),
    shape_c128_t02=replace(_c128, temperature=0.2),
)

#: the point the cpu-science protocol is (configs/_base_/protocols/
#: cpu-science.py; a test checks that its MoCo v2 config resolves to it)
PROTOCOL_POINT = 'shape_c128'


def levers(name: str) -> Levers:
    """The levers of a named sweep point."""
    return SWEEP_POINTS[name]


__all__ = ['PROTOCOL_POINT', 'SWEEP_POINTS', 'levers']
