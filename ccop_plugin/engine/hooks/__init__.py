from .curriculum_hook import CurriculumHook
from .heatmap_proposal_hook import HeatmapProposalHook
from .proposal_stats_hook import ProposalStatsHook

__all__ = ['CurriculumHook', 'HeatmapProposalHook', 'ProposalStatsHook']
