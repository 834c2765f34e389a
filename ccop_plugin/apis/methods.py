"""The methods of the main job and the comparison: their packaged configs
and their names in reports.

The one table of methods; :mod:`ccop_plugin.apis.main_job` runs them and
:mod:`ccop_plugin.apis.tables` names them.
"""
#: Packaged configs (names for :func:`ccop_plugin.utils.get_config_path`).
PRETRAIN_CONFIGS = {
    'ccop': 'ccop/ccop_resnet18-fpn_cpu-tiny.py',
    'mocov2': 'mocov2/mocov2_resnet18_cpu-tiny.py',
    # ablations of CCOP
    'ccop_no_curriculum':
    'ablations/ccop_resnet18-fpn_no-curriculum_cpu-tiny.py',
    'ccop_no_intra': 'ablations/ccop_resnet18-fpn_no-intra_cpu-tiny.py',
    'ccop_no_inter': 'ablations/ccop_resnet18-fpn_no-inter_cpu-tiny.py',
    'ccop_intra_key': 'ablations/ccop_resnet18-fpn_intra-key_cpu-tiny.py',
    # related methods the plugin ships
    # the in-step variant (HeatmapBoxSource: boxes from the key view's heat
    # map in each step); the key is kept so earlier records and work dirs
    # still read, the name says the variant
    'heatmap': 'mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py',
    'plrc': 'plrc/plrc_resnet18_cpu-tiny.py',
    'mcl': 'mcl/mcl_resnet18-fpn_cpu-tiny.py',
}
#: Methods whose pre-training reads a plain image folder (no proposal file).
IMAGE_FOLDER_METHODS = ('mocov2', )
#: Every method of the comparison; ``none`` is no pre-training (random init).
METHODS = ('ccop', 'mocov2', 'none', 'ccop_no_curriculum', 'ccop_no_intra',
           'ccop_no_inter', 'ccop_intra_key', 'heatmap', 'plrc', 'mcl')
#: The comparison's default: CCOP, its MoCo v2 base and no pre-training.
DEFAULT_METHODS = ('ccop', 'mocov2', 'none')
#: The detector every method is fine-tuned with (a packaged config).
FINETUNE_CONFIG = ('mask_rcnn/'
                   'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')
#: The protocols of the comparison. ``cpu-tiny``: the tiny configs above
#: at the budget the comparison sets (the history tables of
#: docs/science.md); ``cpu-science``: the science protocol
#: (``configs/_base_/protocols/cpu-science.py``, in which MoCo v2 learns),
#: whose configs keep their own batch, schedule and warm-up.
PROTOCOLS = ('cpu-tiny', 'cpu-science')
DEFAULT_PROTOCOL = 'cpu-tiny'
#: The science protocol's pre-training configs (its methods: these and
#: ``none``).
SCIENCE_PRETRAIN_CONFIGS = {
    'ccop': 'ccop/ccop_resnet18-w16-fpn_cpu-science.py',
    'mocov2': 'mocov2/mocov2_resnet18-w16_cpu-science.py',
    'ccop_no_curriculum':
    'ablations/ccop_resnet18-w16-fpn_no-curriculum_cpu-science.py',
    'ccop_no_intra':
    'ablations/ccop_resnet18-w16-fpn_no-intra_cpu-science.py',
    'ccop_no_inter':
    'ablations/ccop_resnet18-w16-fpn_no-inter_cpu-science.py',
    'ccop_intra_key':
    'ablations/ccop_resnet18-w16-fpn_intra-key_cpu-science.py',
}
#: Its detector: backbone (base width 16) and FPN (64 channels) of the
#: science checkpoints, so that every pre-trained weight transfers.
SCIENCE_FINETUNE_CONFIG = ('mask_rcnn/'
                           'mask-rcnn_r18-w16-ccop-science_fpn-bn-4conv1fc_'
                           '6e_synth.py')
#: ResNet stem / base channels of each protocol (random init and the probe
#: of ``none`` use it; a checkpoint's own width is read from its tensors).
PROTOCOL_WIDTH = {'cpu-tiny': 64, 'cpu-science': 16}


def check_protocol(protocol: str) -> str:
    """``protocol``, checked against :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'unknown protocol {protocol!r}; known: '
                         f'{", ".join(PROTOCOLS)}')
    return protocol


def protocol_methods(protocol: str = DEFAULT_PROTOCOL) -> tuple:
    """The methods a protocol has configs for (with ``none``)."""
    if check_protocol(protocol) == 'cpu-tiny':
        return METHODS
    return tuple(m for m in METHODS
                 if m == 'none' or m in SCIENCE_PRETRAIN_CONFIGS)


def pretrain_config(method: str, protocol: str = DEFAULT_PROTOCOL):
    """The packaged pre-training config of ``method`` under ``protocol``
    (None for ``none`` or a method the protocol has no config for)."""
    table = (PRETRAIN_CONFIGS if check_protocol(protocol) == 'cpu-tiny'
             else SCIENCE_PRETRAIN_CONFIGS)
    return table.get(method)


def finetune_config(protocol: str = DEFAULT_PROTOCOL) -> str:
    """The packaged detector config of ``protocol``."""
    return (FINETUNE_CONFIG if check_protocol(protocol) == 'cpu-tiny'
            else SCIENCE_FINETUNE_CONFIG)


#: Names of the methods in reports and tables.
METHOD_NAMES = dict(
    ccop='CCOP', mocov2='MoCo v2 (mmpretrain)',
    none='no pre-training (random init)',
    ccop_no_curriculum='CCOP, no curriculum (start values)',
    ccop_no_intra='CCOP, no intra-image loss',
    ccop_no_inter='CCOP, no inter-image object loss',
    ccop_intra_key='CCOP, intra-image loss anchored at the key',
    heatmap='CCOP + heat-map proposals (in-step)', plrc='PLRC', mcl='MCL')
