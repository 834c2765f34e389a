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
With ``full_names=False`` the ``backbone.bottom_up.`` / ``backbone.``
prefixes are left out (as torchvision converts are); Detectron2 then matches
the names by suffix (``matching_heuristics``).
"""
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import Mapping, Union

from .checkpoint import ConversionError
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
    if not out.endswith('.pkl'):
        raise ValueError(f'{out}: Detectron2 reads pickled weights from '
                         '.pkl files')
    d = osp.dirname(osp.abspath(out))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            pickle.dump(d2, f)
        os.replace(tmp, out)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
