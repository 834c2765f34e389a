from .curriculum_hook import CurriculumHook

__all__ = ['CurriculumHook']
