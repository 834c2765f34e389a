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
#: Names of the methods in reports and tables.
METHOD_NAMES = dict(
    ccop='CCOP', mocov2='MoCo v2 (mmpretrain)',
    none='no pre-training (random init)',
    ccop_no_curriculum='CCOP, no curriculum (start values)',
    ccop_no_intra='CCOP, no intra-image loss',
    ccop_no_inter='CCOP, no inter-image object loss',
    ccop_intra_key='CCOP, intra-image loss anchored at the key',
    heatmap='CCOP + heat-map proposals (in-step)', plrc='PLRC', mcl='MCL')
