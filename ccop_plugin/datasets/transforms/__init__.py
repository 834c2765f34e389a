from .box_aware_views import CCOP_PHOTOMETRIC, BoxAwareMultiView
from .formatting import PackBoxSelfSupInputs
from .loading import LoadProposals, load_proposal_index, sanitize_boxes
from .grid_regions import GridRegions

__all__ = [
    'BoxAwareMultiView', 'CCOP_PHOTOMETRIC', 'LoadProposals',
    'PackBoxSelfSupInputs', 'load_proposal_index', 'sanitize_boxes',
    'GridRegions'
]
