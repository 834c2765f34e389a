from .curriculum_hook import CurriculumHook
from .heatmap_proposal_hook import HeatmapProposalHook

__all__ = ['CurriculumHook', 'HeatmapProposalHook']
