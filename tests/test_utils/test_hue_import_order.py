"""mmcv 2.1's hue jitter under NumPy 2: stock MoCo v2 / DenseCL pipelines
fail without the plugin; importing ccop_plugin at any point before the
transform runs (even after the pipeline was built) fixes it."""
import subprocess
import sys

import numpy as np
import pytest

CODE = '''
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter
t = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
img = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
np.random.seed(0)
failed = 0
for _ in range(40):
    try:
        t(dict(img=img.copy()))
    except OverflowError:
        failed += 1
import ccop_plugin  # after the transform was built and used
for _ in range(40):
    t(dict(img=img.copy()))
print('failed-before-import', failed)
'''


@pytest.mark.slow
@pytest.mark.skipif(np.__version__ < '2', reason='NumPy 1 is not affected')
def test_hue_fix_applies_whenever_the_plugin_is_imported():
    res = subprocess.run([sys.executable, '-c', CODE], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    failed = int(res.stdout.split()[-1])
    assert failed > 0  # stock mmcv + NumPy 2: the crash users would see
