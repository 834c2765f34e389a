"""CCOP / mmdet-style weights -> Detectron2 ``.pkl``.

Names follow Detectron2's ``build_resnet_fpn_backbone`` (the renaming of
detectron2's ``tools/convert-torchvision-to-d2.py``, plus the FPN):

==================================  =========================================
ours (mmdet / mmpretrain)           Detectron2
==================================  =========================================
backbone.conv1.weight               backbone.bottom_up.stem.conv1.weight
backbone.bn1.*                      backbone.bottom_up.stem.conv1.norm.*
backbone.layer1.0.conv2.weight      backbone.bottom_up.res2.0.conv2.weight
backbone.layer1.0.bn2.*             backbone.bottom_up.res2.0.conv2.norm.*
backbone.layer1.0.downsample.0.*    backbone.bottom_up.res2.0.shortcut.*
backbone.layer1.0.downsample.1.*    backbone.bottom_up.res2.0.shortcut.norm.*
neck.lateral_convs.0.conv.*         backbone.fpn_lateral2.*
neck.lateral_convs.0.bn.*           backbone.fpn_lateral2.norm.*
neck.fpn_convs.3.conv.*             backbone.fpn_output5.*
neck.fpn_convs.3.bn.*               backbone.fpn_output5.norm.*
==================================  =========================================

``*`` of a norm layer is ``weight``, ``bias``, ``running_mean``,
``running_var`` (``num_batches_tracked`` is dropped). With BN in the FPN
(CCOP's FPN), Detectron2 needs ``MODEL.FPN.NORM: "SyncBN"`` (or ``"BN"``),
and its FPN convs then have no bias, as ours. ``MODEL.RESNETS.STRIDE_IN_1X1:
False`` (PyTorch-style ResNet) and RGB input with the torchvision mean/std
(``INPUT.FORMAT: "RGB"``) match the pre-training.
:func:`detectron2_settings` lists what an export needs (read off its
weights) and :func:`check_detectron2_config` checks a Detectron2 yaml config
against it (no Detectron2 installation needed).
With ``full_names=False`` the ``backbone.bottom_up.`` / ``backbone.``
prefixes are left out (as torchvision converts are); Detectron2 then matches
the names by suffix (``matching_heuristics``).
"""
import json
import os.path as osp
import pickle
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple, Union

import numpy as np
import torch

from ..utils.fileio import atomic_open
from .checkpoint import (
    ConversionError,
    describe_fpn,
    from_detectron2_layout,
    infer_resnet_depth,
)
from .mmdet_converter import ConversionResult, convert_to_mmdet

_NORM = r'(bn|gn|ln|norm)'


def d2_name(key: str, full_names: bool = True) -> str:
    """Detectron2 name of an mmdet ``backbone.``/``neck.`` key.

    Raises:
        ConversionError: For a key outside the ResNet/FPN layout.
    """
    bu = 'backbone.bottom_up.' if full_names else ''
    top = 'backbone.' if full_names else ''
    m = re.match(r'backbone\.(conv1|bn1)\.(\w+)$', key)
    if m:
        mid = 'conv1' if m.group(1) == 'conv1' else 'conv1.norm'
        return f'{bu}stem.{mid}.{m.group(2)}'
    m = re.match(r'backbone\.layer(\d)\.(\d+)\.(.+)$', key)
    if m:
        rest = m.group(3)
        rest = re.sub(r'^bn(\d)\.', r'conv\1.norm.', rest)
        rest = re.sub(r'^downsample\.0\.', 'shortcut.', rest)
        rest = re.sub(r'^downsample\.1\.', 'shortcut.norm.', rest)
        return f'{bu}res{int(m.group(1)) + 1}.{m.group(2)}.{rest}'
    m = re.match(r'neck\.(lateral_convs|fpn_convs)\.(\d+)\.(conv|' + _NORM +
                 r')\.(\w+)$', key)
    if m:
        kind = 'fpn_lateral' if m.group(1) == 'lateral_convs' else \
            'fpn_output'
        norm = '' if m.group(3) == 'conv' else '.norm'
        return f'{top}{kind}{int(m.group(2)) + 2}{norm}.{m.group(5)}'
    raise ConversionError(f'no Detectron2 name for {key!r} (deep stems, '
                          'extra FPN convs and heads are not supported)')


def convert_to_detectron2(src: Union[str, Mapping],
                          with_fpn: bool = True,
                          full_names: bool = True,
                          author: str = 'ccop_plugin'):
    """Convert a CCOP / mmpretrain checkpoint to a Detectron2 model dict.

    Args:
        src (str | Mapping): Checkpoint path or object (see
            :func:`~ccop_plugin.converters.convert_to_mmdet`).
        with_fpn (bool): Also export the FPN.
        full_names (bool): Use full Detectron2 names (``backbone.bottom_up.``
            ...) instead of suffixes.
        author (str): ``__author__`` field.

    Returns:
        tuple: ``(d2, result)`` with ``d2 = {'model': {name: np.ndarray},
        '__author__': author, 'matching_heuristics': True}`` and the
        :class:`ConversionResult` whose ``mapped`` holds the D2 names.
    """
    mm = convert_to_mmdet(src, with_fpn=with_fpn)
    res = ConversionResult(source=mm.source, skipped=list(mm.skipped))
    model = {}
    for k, _ in mm.mapped:
        if k.endswith('num_batches_tracked'):
            res.skipped.append((k, 'num_batches_tracked (not in D2)'))
            continue
        name = d2_name(k, full_names)
        model[name] = mm.state_dict[k].detach().cpu().numpy()
        res.mapped.append((k, name))
    d2 = {'model': model, '__author__': author, 'matching_heuristics': True}
    return d2, res


def save_detectron2(d2: dict, out: str) -> None:
    """Pickle a Detectron2 model dict to ``out`` (``.pkl``) atomically."""
    check_detectron2_output(out)
    with atomic_open(out, 'wb') as f:
        pickle.dump(d2, f)


def check_detectron2_output(out: str) -> None:
    """Refuse an output name Detectron2 would not read as pickled weights.

    Raises:
        ConversionError: ``out`` does not end with ``.pkl``.
    """
    if not out.endswith('.pkl'):
        raise ConversionError(f'{out}: Detectron2 reads pickled weights from '
                              '.pkl files; name the output *.pkl')


# Detectron2's defaults (detectron2/config/defaults.py) of the keys checked
D2_DEFAULTS = {
    'MODEL.BACKBONE.NAME': 'build_resnet_backbone',
    'MODEL.RESNETS.DEPTH': 50,
    'MODEL.RESNETS.NORM': 'FrozenBN',
    'MODEL.RESNETS.STRIDE_IN_1X1': True,
    'MODEL.RESNETS.RES2_OUT_CHANNELS': 256,
    'MODEL.FPN.NORM': '',
    'MODEL.FPN.OUT_CHANNELS': 256,
    'INPUT.FORMAT': 'BGR',
    'MODEL.PIXEL_MEAN': [103.530, 116.280, 123.675],
    'MODEL.PIXEL_STD': [1.0, 1.0, 1.0],
}
# Detectron2's BatchNorm variants (detectron2.layers.get_norm)
_D2_BN = ('SyncBN', 'BN', 'FrozenBN', 'naiveSyncBN', 'nnSyncBN')


def _fmt(value) -> str:
    """A config value as written in a Detectron2 yaml."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_fmt(v) for v in value) + ']'
    return json.dumps(value)


@dataclass
class D2Setting:
    """A Detectron2 config value an export needs.

    Attributes:
        key (str): Config key, e.g. ``MODEL.FPN.NORM``.
        allowed (tuple): Accepted values (the first is the one to use).
        why (str): Reason, shown with the setting.
        required (bool): Weights load wrongly otherwise (else: advice, e.g.
            the input normalisation of the pre-training).
    """
    key: str
    allowed: tuple
    why: str
    required: bool = True

    def accepts(self, value) -> bool:
        for a in self.allowed:
            if isinstance(a, (list, tuple)):
                if (isinstance(value, (list, tuple)) and len(value) == len(a)
                        and all(abs(float(v) - float(x)) < 1e-3
                                for v, x in zip(value, a))):
                    return True
            elif value == a and type(value) is type(a):
                return True
        return False

    def show(self) -> str:
        vals = ' or '.join(_fmt(a) for a in self.allowed)
        return f'{self.key}: {vals}  ({self.why})'


def detectron2_settings(d2: Mapping) -> List[D2Setting]:
    """The Detectron2 settings under which an exported model loads fully.

    Read off the exported weights (full or short names): the ResNet depth,
    its norm, the FPN's norm and width. The input settings are the plugin's
    pre-training normalisation (RGB, ImageNet mean/std in 0-255), as advice.
    """
    model = d2.get('model', d2)
    sd = from_detectron2_layout(
        {k: torch.as_tensor(np.asarray(v)) for k, v in model.items()})
    out = []
    depth = infer_resnet_depth(sd)
    fpn = describe_fpn(sd)
    if fpn is not None:
        out.append(D2Setting('MODEL.BACKBONE.NAME',
                             ('build_resnet_fpn_backbone', ),
                             'the export has an FPN'))
    if depth is not None:
        out.append(D2Setting('MODEL.RESNETS.DEPTH', (depth, ),
                             'blocks per stage of the export'))
        if depth >= 50:
            out.append(D2Setting(
                'MODEL.RESNETS.STRIDE_IN_1X1', (False, ),
                'PyTorch-style ResNet: stride in the 3x3 conv'))
        else:
            out.append(D2Setting('MODEL.RESNETS.RES2_OUT_CHANNELS', (64, ),
                                 f'ResNet-{depth} (basic blocks)'))
    if any(k.startswith('backbone.bn1.') for k in sd):
        out.append(D2Setting(
            'MODEL.RESNETS.NORM', _D2_BN,
            'the backbone has BatchNorm (SyncBN: the fine-tuning protocol; '
            'FrozenBN loads too)'))
    if fpn is not None:
        if fpn['norm'] == 'bn':
            norm = _D2_BN
            why = ('the exported FPN has BatchNorm; with "" Detectron2 '
                   'loads only its conv weights')
        elif fpn['norm'] == 'gn':
            norm, why = ('GN', ), 'the exported FPN has GroupNorm'
        else:
            norm, why = ('', ), 'the exported FPN has no norm layers'
        out.append(D2Setting('MODEL.FPN.NORM', norm, why))
        out.append(D2Setting('MODEL.FPN.OUT_CHANNELS', (fpn['out_channels'], ),
                             'width of the exported FPN'))
    pre = 'the pre-training normalisation'
    out += [
        D2Setting('INPUT.FORMAT', ('RGB', ), pre, required=False),
        D2Setting('MODEL.PIXEL_MEAN', ((123.675, 116.28, 103.53), ), pre,
                  required=False),
        D2Setting('MODEL.PIXEL_STD', ((58.395, 57.12, 57.375), ), pre,
                  required=False),
    ]
    return out


def read_detectron2_config(path: str, _depth: int = 0) -> Tuple[Dict, List]:
    """Flat ``{'MODEL.FPN.NORM': value}`` of a Detectron2 yaml config.

    Follows ``_BASE_`` (a path relative to the file) as Detectron2 does, the
    file's own keys overriding its base's. Detectron2 is not needed.

    Returns:
        tuple: ``(flat, notes)``; ``notes`` names bases that could not be
        read (their keys then count as Detectron2's defaults).

    Raises:
        ConversionError: The file is missing or not a yaml mapping.
    """
    import yaml
    if not osp.isfile(path):
        raise ConversionError(f'{path}: no such Detectron2 config')
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        line = str(e).strip().splitlines()[0]
        raise ConversionError(f'{path}: not a yaml file ({line})') from None
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConversionError(f'{path}: not a Detectron2 config (a yaml '
                              'mapping of MODEL / INPUT ... keys)')
    flat: Dict = {}
    notes: List[str] = []
    base = cfg.pop('_BASE_', None)
    if base is not None:
        base_path = base if osp.isabs(str(base)) else osp.join(
            osp.dirname(path), str(base))
        if _depth >= 10:
            raise ConversionError(f'{path}: _BASE_ chain deeper than 10')
        if osp.isfile(base_path):
            flat, notes = read_detectron2_config(base_path, _depth + 1)
        else:
            notes.append(f'{path}: _BASE_ {base} not found; the keys it '
                         'sets count as Detectron2 defaults')

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f'{prefix}{k}.')
            else:
                flat[f'{prefix}{k}'] = v
    walk(cfg, '')
    return flat, notes


def check_detectron2_config(settings: List[D2Setting], path: str
                            ) -> Tuple[List[str], int]:
    """Compare a Detectron2 yaml config with the settings of an export.

    Returns:
        tuple: ``(lines, num_required_mismatches)``; keys absent from the
        file (and its bases) take Detectron2's defaults.
    """
    flat, notes = read_detectron2_config(path)
    lines = [f'check against {path}:'] + [f'  note: {n}' for n in notes]
    bad = 0
    for s in settings:
        if s.key in flat:
            value, src = flat[s.key], ''
        else:
            value, src = D2_DEFAULTS.get(s.key), ' (Detectron2 default)'
        if s.accepts(value):
            lines.append(f'  ok        {s.key} = {_fmt(value)}{src}')
            continue
        if s.required:
            bad += 1
        tag = 'MISMATCH' if s.required else 'advice  '
        lines.append(f'  {tag}  {s.key} = {_fmt(value)}{src}; the '
                     f'export needs {s.show()}')
    return lines, bad
