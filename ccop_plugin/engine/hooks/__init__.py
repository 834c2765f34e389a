from .curriculum_hook import CurriculumHook
from .heatmap_proposal_hook import HeatmapProposalHook
from .random_state_hook import (RandomStateHook, get_random_state,
                                set_random_state)

__all__ = [
    'CurriculumHook', 'HeatmapProposalHook', 'RandomStateHook',
    'get_random_state', 'set_random_state'
]
