"""CCOP (or mmpretrain MoCo-style) checkpoint -> mmdet detector weights.

The query encoder of :class:`~ccop_plugin.models.CCOP` lives under
``backbone.`` (mmpretrain ResNet, same key names as mmdet's ResNet) and
``neck.`` (mmdet FPN), so mmdet's Mask R-CNN loads these keys unchanged. The
converter keeps them, drops everything that is not part of a detector
(momentum encoder, projection necks, heads, queues) and reports what it did.
"""
import copy
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..utils.fileio import atomic_path
from .checkpoint import (
    ConversionError,
    StateDict,
    check_output_path,
    describe_fpn,
    from_detectron2_layout,
    infer_resnet_depth,
    infer_resnet_width,
    load_state_dict,
)

# prefix -> why it is not transferred
SKIP_REASONS = (
    ('encoder_k.', 'momentum (key) encoder'),
    ('backbone_k.', 'momentum (key) encoder'),
    ('img_neck_', 'image projection neck (pre-training only)'),
    ('roi_neck_', 'RoI projection neck (pre-training only)'),
    ('momentum_encoder.', 'momentum (key) encoder'),
    ('target_net.', 'momentum (target) encoder'),
    ('img_neck.', 'image projection neck (pre-training only)'),
    ('roi_neck.', 'RoI projection neck (pre-training only)'),
    ('head.', 'pre-training head'),
    ('roi_head.', 'pre-training head'),
    ('intra_head.', 'pre-training head'),
    ('curriculum.', 'box-jitter curriculum state (pre-training only)'),
    ('object_branch.', 'object branch: RoI neck, heads, queue, momentum '
     'copy (pre-training only)'),
    ('data_preprocessor.', 'data preprocessor'),
)
_RESNET_TOP = re.compile(r'^(conv1|bn1|layer[1-4])\.')


@dataclass
class ConversionResult:
    """Output of a conversion.

    Attributes:
        state_dict (dict): Converted weights (target names).
        mapped (list): ``(source key, target key)`` pairs.
        skipped (list): ``(source key, reason)`` pairs.
        missing (list): Target keys of the backbone (and, unless the FPN
            is left out on purpose with ``with_fpn=False``, the FPN) that got
            no weight (empty when no target key set was given).
        warnings (list): Lines the report shows with ``WARNING:`` (e.g. a
            target FPN that gets no weights).
        source (str): Description of the input.
    """
    state_dict: Dict = field(default_factory=dict)
    mapped: List[Tuple[str, str]] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    source: str = ''

    def report(self, verbose: bool = False) -> str:
        """Human-readable summary (all mapped keys when ``verbose``)."""
        lines = [f'source: {self.source}',
                 f'mapped: {len(self.mapped)} keys']
        if verbose:
            lines += [f'  {s} -> {t}' for s, t in self.mapped]
        else:
            groups: Dict[str, int] = {}
            for _, t in self.mapped:
                top = t.split('.')[0]
                groups[top] = groups.get(top, 0) + 1
            lines += [f'  {g}.*: {n}' for g, n in groups.items()]
        reasons: Dict[str, List[str]] = {}
        for k, r in self.skipped:
            reasons.setdefault(r, []).append(k)
        lines.append(f'skipped: {len(self.skipped)} keys')
        for r, keys in reasons.items():
            shown = ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
            lines.append(f'  {len(keys)} x {r}: {shown}')
        lines.append(f'missing (in the target, not in the checkpoint): '
                     f'{len(self.missing)} keys')
        lines += [f'  {k}' for k in self.missing]
        lines += [f'WARNING: {w}' for w in self.warnings]
        return '\n'.join(lines)


def _normalise_prefixes(sd: StateDict) -> StateDict:
    """Rename Detectron2-layout keys (incl. the reference CCOP code's
    ``backbone_q.``) to mmdet's; give a bare torchvision/mmdet ResNet state
    dict the ``backbone.`` prefix; leave other checkpoints as they are."""
    sd = from_detectron2_layout(sd)
    if any(k.startswith('backbone.') for k in sd):
        return sd
    if sum(bool(_RESNET_TOP.match(k)) for k in sd) >= len(sd) // 2 > 0:
        return {('backbone.' + k if _RESNET_TOP.match(k) else k): v
                for k, v in sd.items()}
    return sd


def expected_keys_for(state_dict: StateDict,
                      with_fpn: bool = True) -> Dict[str, torch.Size]:
    """Key shapes of the mmdet ResNet (+ FPN) matching a checkpoint.

    Builds mmdet's ``ResNet`` of the inferred depth and width (stem and
    base channels) and, when the checkpoint has an FPN and ``with_fpn``,
    mmdet's ``FPN`` with the same channels and norm (no weights are
    downloaded).
    """
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN
    sd = _normalise_prefixes(state_dict)
    depth = infer_resnet_depth(sd)
    if depth is None:
        return {}
    stem, base = infer_resnet_width(sd) or (64, 64)
    net = ResNet(depth=depth, stem_channels=stem, base_channels=base)
    keys = {'backbone.' + k: v.shape for k, v in net.state_dict().items()}
    fpn = describe_fpn(sd) if with_fpn else None
    if fpn is not None:
        norm_cfg = dict(type='BN') if fpn['norm'] == 'bn' else (
            dict(type='GN', num_groups=32) if fpn['norm'] == 'gn' else None)
        neck = FPN(fpn['in_channels'], fpn['out_channels'], num_outs=5,
                   norm_cfg=norm_cfg)
        keys.update({'neck.' + k: v.shape
                     for k, v in neck.state_dict().items()})
    return keys


def expected_keys_from_config(config, with_fpn: bool = True
                              ) -> Dict[str, torch.Size]:
    """``backbone.``/``neck.`` key shapes of the detector of an mmdet config
    (a file or a ``Config``).

    The model is built with every ``init_cfg`` and ``pretrained`` removed, and
    SyncBN replaced by BN (so that no process group is needed).
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config) if isinstance(config, str) else config

    def scrub(node):
        if isinstance(node, dict):
            for k in list(node):
                if k in ('init_cfg', 'pretrained'):
                    node[k] = None
                elif k == 'type' and node[k] in ('SyncBN', 'MMSyncBN'):
                    node[k] = 'BN'
                else:
                    scrub(node[k])
        elif isinstance(node, list):
            for x in node:
                scrub(x)
    model_cfg = copy.deepcopy(cfg.model)  # ConfigDict: heads read attrs
    scrub(model_cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    tops = ('backbone.', 'neck.') if with_fpn else ('backbone.', )
    return {k: v.shape for k, v in model.state_dict().items()
            if k.startswith(tops)}


def convert_to_mmdet(src: Union[str, Mapping],
                     with_fpn: bool = True,
                     expected: Optional[Mapping[str, torch.Size]] = None
                     ) -> ConversionResult:
    """Keep the query encoder of a pre-training checkpoint for mmdet.

    Args:
        src (str | Mapping): CCOP / mmpretrain (MoCo v2, ...) checkpoint path
            or object, or a bare ResNet state dict.
        with_fpn (bool): Also transfer an mmdet FPN found under ``neck.``
            (a non-FPN ``neck.``, such as MoCo's projection, is skipped).
        expected (Mapping, optional): Target key -> shape (e.g. from
            :func:`expected_keys_from_config`); keys absent there or of
            another shape are skipped and ``missing`` is filled. Defaults to
            :func:`expected_keys_for` of the checkpoint.

    Returns:
        ConversionResult: Converted weights and report.

    Raises:
        ConversionError: When no weight maps to the detector.
    """
    sd, name = load_state_dict(src)
    sd = _normalise_prefixes(sd)
    if expected is None:
        expected = expected_keys_for(sd, with_fpn)
    res = ConversionResult(source=name)
    is_fpn = describe_fpn(sd) is not None
    if is_fpn and with_fpn and expected:
        # all or nothing: an FPN whose layout differs (norm, channels) from
        # the target's would load half-way
        neck_ok = all(
            k in expected and tuple(expected[k]) == tuple(v.shape)
            for k, v in sd.items() if k.startswith('neck.'))
    else:
        neck_ok = is_fpn
    for k, v in sd.items():
        reason = _skip_reason(k, tuple(v.shape), with_fpn, is_fpn, neck_ok,
                              expected)
        if reason is None:
            res.state_dict[k] = v.detach().clone()
            res.mapped.append((k, k))
        else:
            res.skipped.append((k, reason))
    if not res.mapped:
        tops = sorted({k.split('.')[0] for k in sd})
        raise ConversionError(
            f'{name}: no weight maps to an mmdet detector (expected keys '
            f'under backbone. / neck.; the checkpoint has {tops})')
    if expected:
        _report_missing(res, expected, with_fpn, is_fpn)
    return res


def _skip_reason(k: str, shape: tuple, with_fpn: bool, is_fpn: bool,
                 neck_ok: bool, expected: Optional[Mapping[str, torch.Size]]
                 ) -> Optional[str]:
    """Why the checkpoint key ``k`` (of ``shape``) is not transferred, or
    None when it is."""
    reason = None
    if k.startswith('backbone.'):
        pass
    elif k.startswith('neck.'):
        if not is_fpn:
            reason = 'neck is not an FPN (e.g. a projection head)'
        elif not with_fpn:
            reason = 'FPN not transferred (--no-fpn)'
        elif not neck_ok:
            reason = ('FPN differs from the target FPN (norm_cfg / '
                      'channels): not transferred')
    else:
        reason = next((r for p, r in SKIP_REASONS if k.startswith(p)), None)
        if reason is None:
            reason = ('queue / buffer' if 'queue' in k or
                      k.endswith('_ptr') else 'not part of a detector')
    if reason is None and expected:
        if k not in expected:
            reason = 'not in the target model'
        elif tuple(expected[k]) != shape:
            reason = f'shape {shape} != target {tuple(expected[k])}'
    return reason


def _report_missing(res: ConversionResult,
                    expected: Mapping[str, torch.Size], with_fpn: bool,
                    is_fpn: bool) -> None:
    """Fill ``res.missing`` (target keys no weight maps to) and warn when
    the target FPN gets no weights at all."""
    tops = ('backbone.', 'neck.') if with_fpn else ('backbone.', )
    # BN's num_batches_tracked is a counter, not a weight (Detectron2
    # files do not have it): not reported
    res.missing = [k for k in expected
                   if k.startswith(tops) and k not in res.state_dict
                   and not k.endswith('num_batches_tracked')]
    neck_missing = [k for k in res.missing if k.startswith('neck.')]
    if neck_missing and not any(t.startswith('neck.')
                                for _, t in res.mapped):
        why = ('its FPN differs from the target FPN (norm_cfg / '
               'channels)' if is_fpn else
               'the checkpoint has no FPN (e.g. MoCo v2 / DenseCL: '
               'backbone only)')
        res.warnings.append(
            f'the target FPN gets no weights ({len(neck_missing)} keys): '
            f'{why}; it starts from its random initialisation (convert '
            'with --no-fpn if that is intended)')


def require_full_backbone(result: ConversionResult,
                          target: str = 'the target detector') -> None:
    """Check that the whole backbone transfers: every ``backbone.`` weight
    of the checkpoint is used, and every ``backbone.`` key of the target
    (when a target key set was given) gets one.

    The conversion maps weights by the target's shapes, so a detector of
    another depth or width would keep none of the checkpoint's and start
    from its random initialisation without a word; this makes it an error.

    Raises:
        ConversionError: One line naming the checkpoint, the counts and
            the first weight dropped (and why) or left without a weight.
    """
    dropped = [(k, r) for k, r in result.skipped
               if k.startswith('backbone.')]
    missing = [k for k in result.missing if k.startswith('backbone.')]
    if not dropped and not missing:
        return
    first = dropped[0] if dropped else (missing[0], 'gets no weight')
    raise ConversionError(
        f'{result.source}: the backbone does not transfer to {target}: '
        f'{len(dropped)} backbone weight(s) of the checkpoint unused, '
        f'{len(missing)} backbone key(s) of the target without a weight '
        f'(first: {first[0]}: {first[1]}); the detector\'s backbone must '
        'have the checkpoint\'s depth and width')


def save_checkpoint(obj, out: str) -> None:
    """``torch.save`` to ``out`` atomically
    (:func:`ccop_plugin.utils.fileio.atomic_path`).

    Raises:
        OSError: The file cannot be written (``torch.save`` reports a full
            disk as a ``RuntimeError`` of its zip writer); ``out`` is kept as
            it was.
    """
    with atomic_path(out) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # its writer's errors: all I/O
            first = e.__context__ if isinstance(
                e.__context__, RuntimeError) else e
            raise OSError(f'torch.save failed: {_one_line(first)} (disk '
                          'full?)') from None


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0][:200] if lines else type(e).__name__


def save_mmdet_checkpoint(result: ConversionResult, out: str) -> None:
    """Write an mmengine-style checkpoint ``{'state_dict', 'meta'}``.

    Raises:
        ConversionError: When ``out`` is the converted file itself.
    """
    if osp.isfile(result.source):
        check_output_path(result.source, out)
    save_checkpoint(
        dict(state_dict=result.state_dict,
             meta=dict(converted_from=result.source,
                       converter='ccop_plugin.converters.convert_to_mmdet',
                       num_mapped=len(result.mapped))), out)
