"""Leave mmengine's global default scope as it was after each test (the
Runner and mmdet's register_all_modules set it to 'mmdet')."""
import copy

import pytest


@pytest.fixture(autouse=True)
def restore_default_scope():
    from mmengine.registry import DefaultScope
    saved = copy.copy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved
