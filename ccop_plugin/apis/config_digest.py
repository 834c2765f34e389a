"""The content of a packaged config in the key of the stage that uses it.

Until this module the stages that read a packaged config (pre-training,
conversion, fine-tuning, test) keyed it by its name alone, so an edited
config (say a neck's init) reused the results made with the old content: a
silent wrong result. A stage's settings now
carry ``config_digest``, a hash of the resolved config, except when the
content is the one the name-keyed stages were made with
(:data:`NAME_KEYED_DIGESTS`): those keys, and the work dirs made with them,
stay valid, and any edit of a config (or of a ``_base_`` it reads)
recomputes its stages and those after them.
"""
from functools import lru_cache
from typing import Dict, Optional

from ccop_plugin.utils.config_path import get_config_path
from ccop_plugin.utils.owned_folder import settings_key

__all__ = ['config_digest', 'with_config_digest', 'NAME_KEYED_DIGESTS']

#: The digest of each packaged config whose stages were keyed by its name
#: alone (the content at the commit that introduced digests). A config not
#: listed, or whose digest differs, adds ``config_digest`` to the key.
NAME_KEYED_DIGESTS = {
    'ccop/ccop_resnet18-fpn_cpu-tiny.py': '3f3d30b30b1c2c8f',
    'mocov2/mocov2_resnet18_cpu-tiny.py': 'b458780d0a4ec007',
    'ablations/ccop_resnet18-fpn_no-curriculum_cpu-tiny.py':
    'c0bbb592aec2f9d7',
    'ablations/ccop_resnet18-fpn_no-intra_cpu-tiny.py': '97335de757129589',
    'ablations/ccop_resnet18-fpn_no-inter_cpu-tiny.py': '29aa3fabc433e16b',
    'ablations/ccop_resnet18-fpn_intra-key_cpu-tiny.py': 'a1aea7781ca2c81e',
    'ccop/ccop_resnet18-w16-fpn_cpu-science.py': '66414e9b603e0427',
    'mocov2/mocov2_resnet18-w16_cpu-science.py': 'cc175ca3139b9d7d',
    'ablations/ccop_resnet18-w16-fpn_no-curriculum_cpu-science.py':
    'a3b5af75849136a4',
    'ablations/ccop_resnet18-w16-fpn_no-intra_cpu-science.py':
    '4b8c109b5cab8c29',
    'ablations/ccop_resnet18-w16-fpn_no-inter_cpu-science.py':
    '5e70f29e9c7a0334',
    'ablations/ccop_resnet18-w16-fpn_intra-key_cpu-science.py':
    'e79c771980e1b309',
    'mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py':
    'b02bc9eaf67724a3',
    'mask_rcnn/mask-rcnn_r18-w16-ccop-science_fpn-bn-4conv1fc_6e_synth.py':
    '9e02fa242540eefd',
}


@lru_cache(maxsize=None)
def config_digest(name: str) -> str:
    """The settings key (:func:`~ccop_plugin.utils.owned_folder.settings_key`)
    of packaged config ``name`` resolved (its ``_base_`` files merged;
    independent of where it is installed)."""
    from mmengine.config import Config
    cfg = Config.fromfile(get_config_path(name), import_custom_modules=False)
    return settings_key(cfg.to_dict())


def with_config_digest(settings: Dict, name: Optional[str] = None) -> Dict:
    """``settings`` with ``config_digest`` of packaged config ``name``
    (default: ``settings['config']``) unless that config's content is the
    one its stages were keyed by name with."""
    name = name or settings['config']
    digest = config_digest(name)
    if NAME_KEYED_DIGESTS.get(name) != digest:
        settings['config_digest'] = digest
    return settings
