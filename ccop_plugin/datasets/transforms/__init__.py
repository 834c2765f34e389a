from .box_aware_views import CCOP_PHOTOMETRIC, BoxAwareMultiView
from .formatting import PackBoxSelfSupInputs
from .grid_regions import GridRegions
from .loading import LoadProposals

__all__ = [
    'BoxAwareMultiView', 'CCOP_PHOTOMETRIC', 'LoadProposals',
    'PackBoxSelfSupInputs', 'GridRegions'
]
