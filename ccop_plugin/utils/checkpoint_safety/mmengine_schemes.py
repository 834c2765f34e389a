"""Every scheme of mmengine's ``CheckpointLoader`` loading safely: local
files, the URL schemes (downloaded as ``torch.hub`` does) and the rest."""
import os
import os.path as osp
import pickle
import sys
from typing import Any, Optional

import torch

from .errors import CheckpointError
from .torch_files import torch_load
from .weights_pickle import _detectron2_weights


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader of local checkpoint files, loading safely."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch_load(filename, map_location)
    except (RuntimeError, pickle.UnpicklingError) as e:
        if isinstance(e, CheckpointError) or \
                not _detectron2_weights(filename):
            raise
        raise CheckpointError(
            f'{filename}: a Detectron2 weight file (pickled NumPy arrays), '
            'not an mmengine/PyTorch checkpoint, so load_from / resume / '
            'Pretrained cannot read it: convert it first (python '
            f'tools/convert_ccop_to_mmdet.py {filename} out.pth) and load '
            'out.pth') from None


def _hub_file(url: str, model_dir: Optional[str],
              file_name: Optional[str]) -> str:
    from urllib.parse import urlparse
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir,
                    file_name or osp.basename(urlparse(url).path))


def load_url(url: str, model_dir: Optional[str] = None,
             map_location: Any = None, progress: bool = True,
             check_hash: bool = False, file_name: Optional[str] = None,
             weights_only: bool = True) -> Any:
    """``torch.hub.load_state_dict_from_url`` (mmengine's ``load_url``: the
    ``http(s)://``, ``torchvision://``, ``modelzoo://``, ``open-mmlab://``
    and ``mmcls://`` schemes) downloading as it does into
    ``$TORCH_HOME/hub/checkpoints`` but loading with :func:`torch_load`;
    ``weights_only`` is accepted and ignored (always safe)."""
    cached = _hub_file(url, model_dir, file_name)
    if not osp.exists(cached):
        os.makedirs(osp.dirname(cached), exist_ok=True)
        prefix = None
        if check_hash:
            m = torch.hub.HASH_REGEX.search(osp.basename(cached))
            prefix = m.group(1) if m else None
        print(f'Downloading: "{url}" to {cached}', file=sys.stderr)
        torch.hub.download_url_to_file(url, cached, prefix,
                                       progress=progress)
    return torch_load(cached, map_location, name=f'{url} (as {cached})')


class _SafeTorch:
    """``torch`` as seen by mmengine's checkpoint module: everything is
    torch's, except that ``load`` is :func:`torch_load` (the ``pavi://``,
    ``s3://``, ``petrel://`` loaders and ``open-mmlab://`` local files
    call it)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, *args, **kwargs):
        return torch_load(f, map_location)


def patch_mmengine_loaders() -> bool:
    """Make every scheme of mmengine's ``CheckpointLoader`` load safely:
    local files (scheme ``''``: ``--resume``, ``load_from``, ``Pretrained``
    init) with :func:`load_from_local`, the URL schemes through
    :func:`load_url`, the others through :class:`_SafeTorch`.

    Returns:
        bool: Whether anything was patched now (idempotent).
    """
    import mmengine.runner.checkpoint as ckpt
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_local and \
            ckpt.load_url is load_url and type(ckpt.torch) is _SafeTorch:
        return False
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    ckpt.load_url = load_url
    ckpt.torch = _SafeTorch()
    return True
