from .box_aware_views import (CCOP_PHOTOMETRIC, BoxAwareMultiView, crop_boxes,
                              sample_crop)
from .formatting import PackBoxSelfSupInputs
from .loading import LoadProposals, load_proposal_index, sanitize_boxes
from .grid_regions import GridRegions

__all__ = [
    'BoxAwareMultiView', 'CCOP_PHOTOMETRIC', 'LoadProposals', 'PackBoxSelfSupInputs',
    'crop_boxes', 'load_proposal_index', 'sample_crop', 'sanitize_boxes', 'GridRegions'
]
