"""Reading pre-training checkpoints, describing their ResNet/FPN, and
writing converted files (atomically: :mod:`ccop_plugin.utils.fileio`)."""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple, Union

import torch

from ..utils.checkpoint_safety import load_checkpoint_file, load_weights_pickle
from ..utils.fileio import same_file

StateDict = Dict[str, torch.Tensor]


class ConversionError(ValueError):
    """A checkpoint cannot be converted (e.g. nothing maps)."""


def load_state_dict(src: Union[str, Mapping]) -> Tuple[StateDict, str]:
    """The state dict of a checkpoint file or object.

    Accepts an mmengine checkpoint (``{'state_dict': ...}``), a
    ``{'model': ...}`` dict (also a Detectron2 ``.pkl`` with NumPy arrays),
    or a raw state dict; a leading ``module.`` (DataParallel/DDP) is
    removed. Files are loaded safely
    (:mod:`ccop_plugin.utils.checkpoint_safety`): torch files with
    ``weights_only=True``, ``.pkl`` files with an unpickler that builds only
    NumPy arrays and plain containers.

    Args:
        src (str | Mapping): Path or already loaded object.

    Returns:
        tuple: ``(state_dict, description)``; values are tensors.

    Raises:
        FileNotFoundError: No such file.
        CheckpointError: The file is refused (it needs more than safe
            loading allows) or unreadable (directory, empty, truncated).
        ConversionError: No state dict / tensors in it.
    """
    name = src if isinstance(src, str) else '<state dict>'
    if isinstance(src, str) and src.endswith('.pkl'):
        obj = load_weights_pickle(src)  # Detectron2: {'model': {name: array}}
    elif isinstance(src, str):
        obj = load_checkpoint_file(src, map_location='cpu')
    else:
        obj = src
    if not isinstance(obj, Mapping):
        raise ConversionError(f'{name}: not a checkpoint (got {type(obj)})')
    for key in ('state_dict', 'model'):
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    out = OrderedDict()
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            try:
                v = torch.as_tensor(v)
            except (TypeError, ValueError, RuntimeError):
                continue
        out[k[len('module.'):] if k.startswith('module.') else k] = v
    if not out:
        raise ConversionError(f'{name}: no tensors found')
    return out, name


def check_output_path(src: str, out: str, overwrite: bool = True) -> None:
    """Refuse an output that would replace the input or is a directory, and,
    unless ``overwrite``, any existing file.

    ``out`` may name ``src`` through a relative path, a symlink (of the file
    or of a folder) or a hard link: refused whatever ``overwrite`` says.

    Raises:
        ConversionError: One line naming the path(s).
    """
    if osp.isdir(out):
        raise ConversionError(f'{out}: is a directory; give the output file')
    if same_file(out, src):
        raise ConversionError(f'{out}: the output is the input checkpoint '
                              f'{src}; choose another output file')
    if not overwrite and osp.lexists(out):
        raise ConversionError(f'{out}: already exists; pass --overwrite to '
                              'replace it, or choose another output file')


# blocks per stage -> depth, for (basic, bottleneck) blocks
_DEPTHS = {
    (False, (2, 2, 2, 2)): 18,
    (False, (3, 4, 6, 3)): 34,
    (True, (3, 4, 6, 3)): 50,
    (True, (3, 4, 23, 3)): 101,
    (True, (3, 8, 36, 3)): 152,
}


def infer_resnet_depth(state_dict: StateDict,
                       prefix: str = 'backbone.') -> Optional[int]:
    """ResNet depth from the block counts under ``prefix`` (None if unknown).
    """
    blocks = {}
    bottleneck = False
    pat = re.compile(re.escape(prefix) + r'layer(\d)\.(\d+)\.(conv\d)')
    for k in state_dict:
        m = pat.match(k)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            blocks[s] = max(blocks.get(s, 0), b + 1)
            bottleneck |= m.group(3) == 'conv3'
    counts = tuple(blocks.get(s, 0) for s in (1, 2, 3, 4))
    return _DEPTHS.get((bottleneck, counts))


def infer_resnet_width(state_dict: StateDict,
                       prefix: str = 'backbone.'
                       ) -> Optional[Tuple[int, int]]:
    """``(stem_channels, base_channels)`` of the ResNet under ``prefix``,
    read from the shapes of its stem and first block (None if absent).

    mmdet's / torchvision's ResNet-50 has 64 and 64; the science protocol's
    ResNet-18 16 and 16."""
    stem = state_dict.get(prefix + 'conv1.weight')
    first = state_dict.get(prefix + 'layer1.0.conv1.weight')
    if stem is None or first is None:
        return None
    return int(stem.shape[0]), int(first.shape[0])


def describe_fpn(state_dict: StateDict,
                 prefix: str = 'neck.') -> Optional[Dict]:
    """mmdet FPN arguments that reproduce the FPN under ``prefix``.

    Returns None when there is no mmdet FPN there (e.g. a MoCo projection
    neck). Otherwise ``dict(in_channels, out_channels, norm)`` where
    ``norm`` is the ConvModule norm layer name (``'bn'``, ``'gn'``) or None.
    """
    lat = {}
    norm = None
    pat = re.compile(re.escape(prefix) +
                     r'lateral_convs\.(\d+)\.(conv|\w+)\.weight$')
    for k, v in state_dict.items():
        m = pat.match(k)
        if not m:
            continue
        if m.group(2) == 'conv':
            lat[int(m.group(1))] = v.shape
        else:
            norm = m.group(2)
    if not lat or not any(k.startswith(prefix + 'fpn_convs.')
                          for k in state_dict):
        return None
    shapes = [lat[i] for i in sorted(lat)]
    return dict(in_channels=[int(s[1]) for s in shapes],
                out_channels=int(shapes[0][0]), norm=norm)


def _mmdet_from_d2_suffix(name: str) -> Optional[str]:
    """mmdet key of a Detectron2 ResNet-FPN name without its prefix
    (``bottom_up.res2.0.conv1.norm.weight``, ``fpn_lateral2.weight`` ...).
    """
    m = re.match(r'^(?:bottom_up\.)?stem\.conv1\.(norm\.)?(\w+)$', name)
    if m:
        return f'backbone.{"bn1" if m.group(1) else "conv1"}.{m.group(2)}'
    m = re.match(r'^(?:bottom_up\.)?res([2-5])\.(\d+)\.'
                 r'(conv\d|shortcut)\.(norm\.)?(\w+)$', name)
    if m:
        stage, block, layer, norm, param = m.groups()
        if layer == 'shortcut':
            layer = 'downsample.1' if norm else 'downsample.0'
        elif norm:
            layer = 'bn' + layer[-1]
        return f'backbone.layer{int(stage) - 1}.{block}.{layer}.{param}'
    m = re.match(r'^fpn_(lateral|output)([2-5])\.(norm\.)?(\w+)$', name)
    if m:
        kind, level, norm, param = m.groups()
        mod = 'lateral_convs' if kind == 'lateral' else 'fpn_convs'
        return (f'neck.{mod}.{int(level) - 2}.'
                f'{"bn" if norm else "conv"}.{param}')
    return None


def from_detectron2_layout(state_dict: StateDict) -> StateDict:
    """Rename Detectron2 ResNet-FPN keys to mmdet's; other keys unchanged.

    Handles Detectron2 models (``backbone.bottom_up.*``,
    ``backbone.fpn_*``), suffix-only exports (``stem.*``, ``res2.*``) and the
    reference CCOP code's checkpoints, whose query encoder is a Detectron2
    ResNet-FPN under ``backbone_q.`` (its momentum copy ``backbone_k.`` is
    kept as is, to be skipped). A state dict without such keys is returned
    unchanged.
    """
    d2_like = re.compile(r'^(backbone_q\.|backbone\.)?'
                         r'(bottom_up\.|stem\.conv1|res[2-5]\.\d|fpn_)')
    if not any(d2_like.match(k) for k in state_dict):
        return state_dict
    out = OrderedDict()
    for k, v in state_dict.items():
        m = d2_like.match(k)
        new = None
        if m:
            new = _mmdet_from_d2_suffix(k[len(m.group(1) or ''):])
        out[k if new is None else new] = v
    return out
