"""Reading pre-training checkpoints and describing their ResNet/FPN."""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple, Union

import torch

StateDict = Dict[str, torch.Tensor]


class ConversionError(ValueError):
    """A checkpoint cannot be converted (e.g. nothing maps)."""


def load_state_dict(src: Union[str, Mapping]) -> Tuple[StateDict, str]:
    """The state dict of a checkpoint file or object.

    Accepts an mmengine checkpoint (``{'state_dict': ...}``), a
    ``{'model': ...}`` dict, or a raw state dict; a leading ``module.``
    (DataParallel/DDP) is removed.

    Args:
        src (str | Mapping): Path or already loaded object.

    Returns:
        tuple: ``(state_dict, description)``; values are tensors.
    """
    name = src if isinstance(src, str) else '<state dict>'
    if isinstance(src, str):
        obj = torch.load(src, map_location='cpu', weights_only=False)
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
