import os
import pickle

import numpy as np
import pytest
import torch


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_matches_mmcv_and_accepts_negative_factors(backend):
    import cv2

    import ccop_plugin  # noqa: F401  (applies the patch)
    from ccop_plugin.utils.compat import _adjust_hue_numpy2
    img = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(
        np.uint8)
    # compare against a direct HSV computation of the same hue rotation
    for f in (0.1, -0.1, 0.45, -0.45):
        out = _adjust_hue_numpy2(img, f, backend=backend)
        assert out.shape == img.shape and out.dtype == img.dtype
        if backend == 'cv2':
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
            hsv[..., 0] = (hsv[..., 0].astype(int) + int(f * 255)) % 256
            ref = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)
            np.testing.assert_array_equal(out, ref)
    # the patched entry point is what mmpretrain's ColorJitter calls
    import mmcv
    assert mmcv.adjust_hue is _adjust_hue_numpy2


def test_color_jitter_with_hue_runs_under_numpy2():
    from mmpretrain.datasets.transforms import ColorJitter

    import ccop_plugin  # noqa: F401
    t = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    img = (np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)
    for _ in range(50):  # about half draw a negative hue factor
        assert t(dict(img=img.copy()))['img'].shape == img.shape


def test_checkpoints_with_numpy_objects_load_safely(tmp_path):
    """mmengine loads checkpoints holding NumPy objects with torch's safe
    default (weights_only=True): the plugin allowlists them instead of
    switching safe loading off for the process."""
    from mmengine.runner.checkpoint import _load_checkpoint

    import ccop_plugin  # noqa: F401
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    path = str(tmp_path / 'c.pth')
    torch.save(dict(state_dict={}, meta=dict(x=np.float64(1.),
                                             y=np.arange(3))), path)
    ck = _load_checkpoint(path)
    assert ck['meta']['x'] == 1. and ck['meta']['y'].tolist() == [0, 1, 2]
    # plain torch.load keeps torch's own allowlist: the NumPy values are
    # rebuilt (validated) by the plugin's loaders only
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
