"""The one way from a checkpoint (or a seed) to a frozen mmdet ResNet.

Used wherever the library needs only a pre-trained backbone: the heat-map
proposal files (:mod:`ccop_plugin.proposals.heatmap_file`) and the linear
probe (:mod:`ccop_plugin.evaluation`). The checkpoint is read with the
converters' reader (:func:`ccop_plugin.converters.convert_to_mmdet`, safe
loading), so every layout they accept works here too.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch


class BackboneLoadError(ValueError):
    """A checkpoint holds no usable ResNet (one line naming it)."""


def _one_line(text: str) -> str:
    return str(text).strip().split('\n')[0]


def _read_backbone(checkpoint: Union[str, Mapping]
                   ) -> Tuple[Dict, int, Tuple[int, int], str]:
    """``(backbone state dict without prefix, depth, (stem, base)
    channels, source)``."""
    from ccop_plugin.converters import (
        ConversionError,
        convert_to_mmdet,
        infer_resnet_depth,
        infer_resnet_width,
    )
    from ccop_plugin.utils.checkpoint_safety import CheckpointError
    name = checkpoint if isinstance(checkpoint, str) else '<state dict>'
    try:
        res = convert_to_mmdet(checkpoint, with_fpn=False)
    except (ConversionError, CheckpointError, OSError, RuntimeError) as e:
        msg = _one_line(e)
        if name not in msg:
            msg = f'{name}: {msg}'
        raise BackboneLoadError(msg) from None
    depth = infer_resnet_depth(res.state_dict)
    if depth is None:
        raise BackboneLoadError(f'{name}: no ResNet of a known depth under '
                                'backbone.')
    width = infer_resnet_width(res.state_dict)
    if width is None:
        raise BackboneLoadError(f'{name}: no ResNet stem (backbone.conv1) '
                                'or first block under backbone.')
    sd = {k[len('backbone.'):]: v for k, v in res.state_dict.items()
          if k.startswith('backbone.')}
    return sd, depth, width, res.source or name


def load_resnet_backbone(checkpoint: Optional[Union[str, Mapping]] = None,
                         depth: int = 18,
                         seed: int = 0,
                         out_indices: Sequence[int] = (0, 1, 2, 3),
                         width: int = 64
                         ) -> Tuple[torch.nn.Module, Dict]:
    """A frozen mmdet ``ResNet`` with the weights of ``checkpoint``.

    Args:
        checkpoint (str | Mapping | None): A checkpoint (file or state dict)
            the converters read: CCOP, heat-map CCOP, mmpretrain MoCo v2 /
            DenseCL, bare torchvision / mmdet ResNets, mmdet detectors
            (their ``backbone.``), Detectron2 layouts; the depth and the
            width (stem and base channels) are read from its tensors.
            ``None``: a random initialisation drawn from ``seed`` (the
            global torch RNG is left untouched).
        depth (int): ResNet depth of the random initialisation.
        seed (int): Seed of the random initialisation.
        out_indices (Sequence[int]): Stages the network returns.
        width (int): Stem and base channels of the random initialisation
            (64: torchvision's ResNets; 16: the science protocol's).

    Returns:
        tuple: ``(backbone, info)``: the network in eval mode with
        ``requires_grad`` off; ``info`` holds ``source``, ``depth``,
        ``width`` (base channels), ``seed`` (None for a checkpoint),
        ``loaded`` (number of tensors) and ``description`` (one line).

    Raises:
        BackboneLoadError: The checkpoint cannot be read, holds no ResNet of
            a known depth, or misses backbone weights (naming the file).
    """
    from mmdet.models.backbones import ResNet
    sd, source = None, 'random init'
    if checkpoint is not None:
        sd, depth, (stem, base), source = _read_backbone(checkpoint)
    else:
        if int(width) < 1:
            raise ValueError(f'width must be a positive number of channels, '
                             f'got {width}')
        stem = base = int(width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ResNet(depth=depth, out_indices=tuple(out_indices),
                     stem_channels=stem, base_channels=base,
                     norm_eval=True, init_cfg=None)
    info = dict(source=source, depth=depth, width=base,
                seed=int(seed) if checkpoint is None else None)
    name = f'ResNet-{depth}' + ('' if base == 64 else f' (width {base})')
    if sd is None:
        info['description'] = (f'{name}, random initialisation '
                               f'(seed {seed})')
    else:
        missing, unexpected = net.load_state_dict(sd, strict=False)
        missing = [k for k in missing
                   if not k.endswith('num_batches_tracked')]
        if missing or unexpected:
            raise BackboneLoadError(
                f'{source}: backbone weights do not fit a {name} '
                f'({len(missing)} missing, {len(unexpected)} unexpected, '
                f'e.g. backbone.{(missing + unexpected)[0]})')
        info['loaded'] = len(sd)
        info['description'] = f'{name} from {source}'
    net.eval()
    net.requires_grad_(False)
    return net, info
