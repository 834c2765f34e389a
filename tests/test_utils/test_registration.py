"""What importing ccop_plugin registers (its docstring's claims)."""
import inspect

import mmdet.registry as mmdet_reg
import mmengine.registry as mmengine_reg
import mmpretrain.registry as mmpretrain_reg

import ccop_plugin


def _ours(module, skip=()):
    found = {}
    for name, reg in vars(module).items():
        if isinstance(reg, mmengine_reg.Registry) and \
                not any(reg is s for s in skip):
            for key, obj in reg.module_dict.items():
                mod = getattr(inspect.unwrap(obj), '__module__', '') or ''
                if mod.startswith('ccop_plugin'):
                    found.setdefault(name, []).append(key)
    return found


def test_registers_in_mmpretrain_and_mmengine_not_in_mmdet():
    doc = ' '.join(ccop_plugin.__doc__.split())
    assert 'registers nothing in mmdet' in doc
    pre = _ours(mmpretrain_reg)
    assert 'CCOP' in pre['MODELS'] and pre['TRANSFORMS'] and pre['HOOKS']
    assert _ours(mmengine_reg) == {
        'MODEL_WRAPPERS': ['AnyDeviceDistributedDataParallel'],
        'HOOKS': ['NonFiniteLossHook', 'WorkDirLockHook']}  # both scopes
    # mmdet's own registries (not the mmengine ones it re-exports)
    assert _ours(mmdet_reg, skip=vars(mmengine_reg).values()) == {}
