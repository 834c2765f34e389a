"""Stand-in for ``mmcv._ext`` on the GPU machine, where only mmcv-lite (no
compiled ops) is installed: mmdet imports ``mmcv.ops`` with its package, and
``mmcv.ops`` checks that every op exists. The step benchmark calls none of
them (RoIs go through torchvision); calling one fails with this message.
tools/device/issue24.sh copies it to ``mmcv/_ext.py`` when that is missing.
"""


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def _missing(*args, **kwargs):
        raise RuntimeError(
            f'mmcv op {name} called on a machine with mmcv-lite only '
            '(tools/device/mmcv_ext_stub.py): build mmcv with ops')
    return _missing
