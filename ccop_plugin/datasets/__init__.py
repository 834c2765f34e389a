from .proposal_dataset import ProposalImageDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['ProposalImageDataset']
