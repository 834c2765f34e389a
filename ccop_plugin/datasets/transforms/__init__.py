from .box_aware_views import CCOP_PHOTOMETRIC, BoxAwareMultiView
from .formatting import PackBoxSelfSupInputs
from .loading import LoadProposals
from .grid_regions import GridRegions

__all__ = [
    'BoxAwareMultiView', 'CCOP_PHOTOMETRIC', 'LoadProposals',
    'PackBoxSelfSupInputs', 'GridRegions'
]
