import copy
import os

import pytest

# Keep the suite deterministic and light on 2-core machines.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Leave mmengine's global default scope as it was after each test.

    Runners and ``register_all_modules`` make 'mmdet' or 'mmpretrain' the
    current scope for the whole process; without this, a test's outcome
    would depend on which tests ran before it.
    """
    from mmengine.registry import DefaultScope
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved
