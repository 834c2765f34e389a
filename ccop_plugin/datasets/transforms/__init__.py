from .box_aware_views import (CCOP_PHOTOMETRIC, BoxAwareMultiView, crop_boxes,
                              sample_crop)
from .formatting import PackBoxSelfSupInputs
from .loading import LoadProposals
from .grid_regions import GridRegions

__all__ = [
    'BoxAwareMultiView', 'CCOP_PHOTOMETRIC', 'LoadProposals',
    'PackBoxSelfSupInputs',
    'crop_boxes', 'sample_crop', 'GridRegions'
]
