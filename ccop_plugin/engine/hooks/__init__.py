from .curriculum_hook import CurriculumHook
from .heatmap_proposal_hook import HeatmapProposalHook
from .non_finite_loss_hook import (
    NonFiniteLossError,
    NonFiniteLossHook,
    non_finite_terms,
)
from .proposal_stats_hook import ProposalStatsHook
from .random_state_hook import (
    RandomStateHook,
    get_random_state,
    set_random_state,
)
from .teacher_temp_warmup_hook import TeacherTempWarmupHook
from .work_dir_lock_hook import WorkDirLockHook

__all__ = [
    'CurriculumHook', 'HeatmapProposalHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'non_finite_terms', 'ProposalStatsHook',
    'RandomStateHook', 'TeacherTempWarmupHook', 'get_random_state',
    'set_random_state', 'WorkDirLockHook'
]
