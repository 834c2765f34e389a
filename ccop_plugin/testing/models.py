"""A narrow model and light checkpoints for Runner tests.

A ResNet-18 at base width 16 has 1/16 of the weights of the standard one:
its checkpoints are a few MB instead of about 90 MB (query and key encoder),
and a CPU step takes a fraction of the time. The tests that need the real
widths (key names and shapes of the paper models) build those themselves.
"""
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Optional, Union

#: The base width (channels of the first stage) of the narrow ResNet-18.
NARROW_BASE_CHANNELS = 16

#: The widest hidden layer of a projection neck or head of the narrow model.
NARROW_HIDDEN_CHANNELS = 64

#: Channels of the four stages of a standard ResNet-18.
_R18_STAGES = (64, 128, 256, 512)


def _scaled(value, factor: int):
    """A ResNet-18 stage width (or a list of them) divided by ``factor``;
    any other value unchanged (None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value // factor if value == _R18_STAGES[-1] else None
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) for v in value):
        tail = _R18_STAGES[-len(value):]
        if tuple(value) == tail or tuple(value) == _R18_STAGES[:len(value)]:
            return type(value)(v // factor for v in value)
    return None


def _is_resnet18(node: Mapping) -> bool:
    kind = str(node.get('type', ''))
    return kind.split('.')[-1] in ('ResNet', 'ResNetV1c', 'ResNetV1d') and \
        node.get('depth') == 18


def narrow_resnet18(model: MutableMapping,
                    base_channels: int = NARROW_BASE_CHANNELS
                    ) -> MutableMapping:
    """Make every ResNet-18 in a model config ``base_channels`` wide.

    The backbones get ``base_channels`` and ``stem_channels``; every other
    ``in_channels`` that reads a backbone stage (512, or a list of the stage
    widths 64/128/256/512 as an FPN takes them) is divided alike, and every
    ``hid_channels`` (a hidden layer inside a neck or head, e.g. the RoI
    neck's 6272 x 512 layer) is capped at ``NARROW_HIDDEN_CHANNELS``. The
    widths that other modules read (FPN and projection outputs) and the
    queues stay as they are, so the losses and their keys are those of the
    full config. Works on a dict or an mmengine ``ConfigDict``, in place.

    Returns:
        The same ``model``.

    Raises:
        ValueError: When ``model`` holds no ResNet-18, or
            ``base_channels`` does not divide 64.
    """
    if base_channels <= 0 or 64 % base_channels:
        raise ValueError(f'base_channels must divide 64, not '
                         f'{base_channels}')
    factor = 64 // base_channels
    found = []

    def walk(node):
        if isinstance(node, MutableMapping):
            if _is_resnet18(node):
                node['base_channels'] = base_channels
                node['stem_channels'] = base_channels
                found.append(node)
                return
            for key in list(node):
                value = node[key]
                if key == 'in_channels':
                    new = _scaled(value, factor)
                    if new is not None:
                        node[key] = new
                elif key == 'hid_channels' and isinstance(value, int):
                    node[key] = min(value, NARROW_HIDDEN_CHANNELS)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(model)
    if not found:
        raise ValueError('narrow_resnet18: the model config holds no '
                         'ResNet with depth=18')
    return model


def light_checkpoints(cfg: MutableMapping) -> MutableMapping:
    """Checkpoints without the optimizer's state (``save_optimizer=False``
    in the config's ``default_hooks.checkpoint``, when it has one); the
    model's weights and the message hub are still saved. In place.

    Returns:
        The same ``cfg``.
    """
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if hook is not None:
        hook['save_optimizer'] = False
    return cfg


def write_tiny_ccop_checkpoint(path: Union[str, Path],
                               seed: int = 0,
                               meta: Optional[dict] = None) -> str:
    """A real CCOP checkpoint of the narrow model (mmengine layout:
    ``state_dict``, ``meta``) built from the plugin's CPU config in seconds.

    The state dict holds what a pre-training writes, with a narrow
    ResNet-18 + FPN: query encoder (``backbone.``, ``neck.``), key encoder
    (``encoder_k.module.``, a copy of the query encoder), the projection
    necks and both queues (``queue.keys``, ``object_branch.roi_queue.keys``).

    Returns:
        str: ``path``.
    """
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    import ccop_plugin  # noqa: F401  (registers CCOP)
    from ccop_plugin.utils import get_config_path
    cfg = Config.fromfile(
        get_config_path('ccop/ccop_resnet18-fpn_cpu-tiny.py'))
    model_cfg = narrow_resnet18(cfg.model.to_dict())
    model_cfg['backbone']['init_cfg'] = None
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = str(path)
    torch.save(dict(state_dict=state, meta=dict(meta or {}, seed=seed)),
               path)
    return path


def narrow_cfg_options(config: Union[str, Path],
                       base_channels: int = NARROW_BASE_CHANNELS) -> list:
    """What :func:`narrow_resnet18` changes in ``config``'s model, as
    ``--cfg-options`` arguments of a command line (``tools/train.py``,
    ``mim train``): ``['model.backbone.base_channels=16', ...]``.

    Raises:
        ValueError: As :func:`narrow_resnet18`.
    """
    import copy

    from mmengine.config import Config
    full = Config.fromfile(str(config)).model.to_dict()
    narrow = narrow_resnet18(copy.deepcopy(full), base_channels)
    out = []

    def diff(a, b, prefix):
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in b:
                diff(a.get(key), b[key], f'{prefix}.{key}')
        elif isinstance(b, (list, tuple)) and any(
                isinstance(v, Mapping) for v in b):
            for i, (va, vb) in enumerate(zip(a, b)):  # mmengine: 'x.0.y'
                diff(va, vb, f'{prefix}.{i}')
        elif a != b:
            text = (f'[{",".join(str(v) for v in b)}]'
                    if isinstance(b, (list, tuple)) else str(b))
            out.append(f'{prefix}={text}')

    diff(full, narrow, 'model')
    return out
