"""Find the configs that ship inside the package (``ccop_plugin/.mim``).

``setup.py`` puts ``configs/`` and ``tools/`` under ``ccop_plugin/.mim`` the
way mmpretrain and mmdet do (symbolic links in a checkout and an editable
install, real files in a wheel), so the library finds its configs wherever
the package is installed and never looks into a source checkout.
"""
import os
import os.path as osp
from typing import List

__all__ = [
    'get_config_root', 'get_config_path', 'list_configs',
    'get_mmpretrain_config_path'
]


def get_config_root() -> str:
    """``<package>/.mim/configs``, the folder of the shipped configs.

    Raises:
        FileNotFoundError: The package has no ``.mim/configs`` (a source
            tree that ``setup.py`` never ran in).
    """
    root = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim',
                    'configs')
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'{root}: the packaged configs are missing; install the package '
            '(`pip install .` or `pip install -e .`), which creates it')
    return root


def list_configs() -> List[str]:
    """Every shipped config, as paths relative to the config folder."""
    root = get_config_root()
    found = []
    for dirpath, _, files in os.walk(root, followlinks=True):
        for f in files:
            if f.endswith('.py'):
                found.append(osp.relpath(osp.join(dirpath, f), root))
    return sorted(found)


def get_config_path(name: str) -> str:
    """Absolute path of a shipped config.

    Args:
        name (str): Path relative to the config folder
            (``'ccop/ccop_resnet18-fpn_cpu-tiny.py'``) or a file name that is
            unique among the configs (``'ccop_resnet18-fpn_cpu-tiny.py'``);
            ``.py`` may be left out.

    Raises:
        FileNotFoundError: No such config, or the file name is ambiguous
            (one line naming the candidates).
    """
    root = get_config_root()
    rel = name if name.endswith('.py') else name + '.py'
    path = osp.join(root, rel)
    if osp.isfile(path):
        return path
    matches = [c for c in list_configs() if osp.basename(c) == rel]
    if len(matches) == 1:
        return osp.join(root, matches[0])
    if matches:
        raise FileNotFoundError(f'config {name!r} is ambiguous in {root}: '
                                f'{", ".join(matches)}')
    raise FileNotFoundError(f'config {name!r} is not in {root} (see '
                            'ccop_plugin.utils.list_configs())')


def get_mmpretrain_config_path(name: str) -> str:
    """Absolute path of a config that mmpretrain ships (``<mmpretrain>/.mim/
    configs/<name>``), e.g. the MoCo v2 baseline the benchmarks compare with.

    Raises:
        FileNotFoundError: mmpretrain ships no such config.
    """
    import mmpretrain
    path = osp.join(list(mmpretrain.__path__)[0], '.mim', 'configs', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: mmpretrain ships no config '
                                f'{name!r}; reinstall mmpretrain 1.x')
    return path
