"""Heat-map object proposals from the pre-training network itself.

Semantic-aware localization (Geng & Huang, CICAI 2023, no public code): the
heat map of the last backbone stage roughly localises objects, so proposals
can come from the network instead of selective search. The heat-map box
follows ContrastiveCrop (xyupeng/ContrastiveCrop): channel sum, per-image
min-max normalisation, box around the pixels above ``thr`` (0.1).

:class:`HeatmapProposalGenerator` draws the boxes; :func:`image_heatmap_boxes`
those of one image and :func:`draw_heatmap_proposals` those of an image set
(the one loop of ``HeatmapProposalHook`` and
``ccop_plugin.proposals.heatmap_file``); :class:`HeatmapBoxSource`
plugs it into CCOP without selective search
(``CCOP(box_source=dict(type='HeatmapBoxSource', ...))``,
``configs/mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py``).
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ccop_plugin.utils.boxes import xyxy_to_xywh
from ccop_plugin.utils.view_geometry import map_boxes_between_views


@MODELS.register_module()
class HeatmapProposalGenerator:
    """Proposals drawn from a feature heat map with centre suppression.

    Draw ``k`` (of ``num_boxes``), per image, vectorised over the batch:

    1. the peak ``p`` of the current (suppressed) heat map; stop for this
       image when its value is below ``thr``;
    2. the box is the extent of the pixels above ``thr`` inside a square
       window of side ``window`` (fraction of the image side) centred on
       ``p`` (``window=2`` covers the image: the first box is then exactly
       ContrastiveCrop's box);
    3. the heat inside a square of side ``suppress_radius`` times the box
       size around the box centre is set to zero before the next draw.

    Args:
        num_boxes (int): Boxes per image. Defaults to 8.
        thr (float): Heat threshold on the [0, 1] map. Defaults to 0.1.
        window (float): Search window side (fraction of the image side).
            Defaults to 0.5.
        suppress_radius (float): Suppressed square side, fraction of the
            box side. Defaults to 0.5.
        min_size (float): Minimum box side in pixels. Defaults to 4.
        warmup_iters (int): Before this iteration the heat map means
            nothing: ``warmup_mode`` boxes are returned instead.
            Defaults to 0.
        warmup_mode (str): ``'whole'`` (one whole-image box) or ``'random'``
            (``num_boxes`` random boxes, side 0.2-0.8 of the image).
    """

    def __init__(self,
                 num_boxes: int = 8,
                 thr: float = 0.1,
                 window: float = 0.5,
                 suppress_radius: float = 0.5,
                 min_size: float = 4.,
                 warmup_iters: int = 0,
                 warmup_mode: str = 'whole') -> None:
        if warmup_mode not in ('whole', 'random'):
            raise ValueError(f'warmup_mode must be whole|random, got '
                             f'{warmup_mode!r}')
        self.num_boxes = num_boxes
        self.thr = thr
        self.window = window
        self.suppress_radius = suppress_radius
        self.min_size = min_size
        self.warmup_iters = warmup_iters
        self.warmup_mode = warmup_mode

    @staticmethod
    def heatmap(feats: torch.Tensor,
                out_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Channel-sum heat map, min-max normalised per image.

        Args:
            feats (torch.Tensor): ``(B, C, h, w)`` last-stage features.
            out_size (tuple, optional): ``(H, W)`` to upsample to
                (bilinear, after normalisation).

        Returns:
            torch.Tensor: ``(B, H, W)`` in [0, 1].
        """
        heat = feats.float().sum(1, keepdim=True)
        lo = heat.amin(dim=(2, 3), keepdim=True)
        hi = heat.amax(dim=(2, 3), keepdim=True)
        heat = (heat - lo) / (hi - lo).clamp_min(1e-12)
        if out_size is not None and tuple(out_size) != heat.shape[-2:]:
            heat = F.interpolate(
                heat, size=tuple(out_size), mode='bilinear',
                align_corners=False).clamp(0, 1)
        return heat[:, 0]

    def sample_boxes(self,
                     heat: torch.Tensor,
                     num: Optional[int] = None,
                     thr: Optional[float] = None,
                     suppress_radius: Optional[float] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Centre-suppressed sampling of boxes around heat peaks.

        Args:
            heat (torch.Tensor): ``(B, H, W)`` heat maps in [0, 1].
            num, thr, suppress_radius: Override the constructor values.

        Returns:
            tuple: ``boxes`` ``(B, num, 4)`` float32 ``xyxy`` pixels (pixel
            ``j`` spans ``[j, j+1)``) and ``valid`` ``(B, num)`` bool.
        """
        num = self.num_boxes if num is None else num
        thr = self.thr if thr is None else thr
        rad = self.suppress_radius if suppress_radius is None \
            else suppress_radius
        B, H, W = heat.shape
        dev = heat.device
        cur = heat.float().clone()
        ys = torch.arange(H, device=dev, dtype=torch.float32).view(1, H, 1)
        xs = torch.arange(W, device=dev, dtype=torch.float32).view(1, 1, W)
        half_w, half_h = self.window * W / 2, self.window * H / 2
        boxes = heat.new_zeros(B, num, 4, dtype=torch.float32)
        valid = torch.zeros(B, num, dtype=torch.bool, device=dev)
        big = float(max(H, W) + 1)
        for k in range(num):
            val, idx = cur.flatten(1).max(1)
            py = (idx // W).float().view(B, 1, 1) + 0.5
            px = (idx % W).float().view(B, 1, 1) + 0.5
            win = ((ys + 0.5 - py).abs() <= half_h) & \
                ((xs + 0.5 - px).abs() <= half_w)
            mask = win & (cur >= thr)
            x1 = torch.where(mask, xs, big).flatten(1).amin(1)
            y1 = torch.where(mask, ys, big).flatten(1).amin(1)
            x2 = torch.where(mask, xs + 1, -1.).flatten(1).amax(1)
            y2 = torch.where(mask, ys + 1, -1.).flatten(1).amax(1)
            ok = (val >= thr) & (x2 - x1 >= self.min_size) & \
                (y2 - y1 >= self.min_size)
            box = torch.stack([x1, y1, x2, y2], 1)
            boxes[:, k] = torch.where(ok[:, None], box, boxes.new_zeros(()))
            valid[:, k] = ok
            # suppress around the box centre (or the peak if no box)
            cx = torch.where(ok, (x1 + x2) / 2, px.view(B)).view(B, 1, 1)
            cy = torch.where(ok, (y1 + y2) / 2, py.view(B)).view(B, 1, 1)
            sw = torch.where(ok, (x2 - x1) * rad / 2,
                             torch.ones_like(x1)).view(B, 1, 1)
            sh = torch.where(ok, (y2 - y1) * rad / 2,
                             torch.ones_like(y1)).view(B, 1, 1)
            sup = ((xs + 0.5 - cx).abs() <= sw.clamp_min(0.5)) & \
                ((ys + 0.5 - cy).abs() <= sh.clamp_min(0.5))
            cur = cur.masked_fill(sup, 0.)
        return boxes, valid

    def warmup_boxes(self, batch: int, img_size: Tuple[int, int],
                     device: torch.device) -> Tuple[torch.Tensor,
                                                    torch.Tensor]:
        """Whole-image or random boxes for the warm-up phase."""
        H, W = img_size
        if self.warmup_mode == 'whole':
            boxes = torch.tensor([[0., 0., W, H]], device=device)
            boxes = boxes.expand(batch, 1, 4).clone()
            return boxes, torch.ones(batch, 1, dtype=torch.bool,
                                     device=device)
        n = self.num_boxes
        side = torch.rand(batch, n, 2, device=device) * 0.6 + 0.2
        side = side * torch.tensor([W, H], device=device, dtype=torch.float)
        lim = torch.tensor([W, H], device=device, dtype=torch.float) - side
        xy = torch.rand(batch, n, 2, device=device) * lim
        boxes = torch.cat([xy, xy + side], -1)
        return boxes, torch.ones(batch, n, dtype=torch.bool, device=device)

    @torch.no_grad()
    def __call__(self, feats: torch.Tensor, img_size: Tuple[int, int],
                 cur_iter: int = 0) -> List[torch.Tensor]:
        """Per-image proposals ``(N_b, 4)`` in input pixels.

        Args:
            feats (torch.Tensor): ``(B, C, h, w)`` last-stage features
                (e.g. of the momentum encoder).
            img_size (tuple): ``(H, W)`` of the input images.
            cur_iter (int): Training iteration (for the warm-up).
        """
        if cur_iter < self.warmup_iters:
            boxes, valid = self.warmup_boxes(feats.shape[0], img_size,
                                             feats.device)
        else:
            boxes, valid = self.sample_boxes(self.heatmap(feats, img_size))
        return [b[v] for b, v in zip(boxes, valid)]


@torch.no_grad()
def image_heatmap_boxes(backbone: torch.nn.Module, img_bgr: np.ndarray,
                        generator: HeatmapProposalGenerator, img_scale: int,
                        mean: Sequence[float], std: Sequence[float],
                        to_rgb: bool = True) -> np.ndarray:
    """Heat-map proposals of one image, in its own pixels.

    The image is resized to ``img_scale x img_scale``, normalised like the
    pre-training data preprocessor (``to_rgb``, then ``(x - mean) / std``),
    run through ``backbone`` (its last output is the C5 map) and
    ``generator`` draws the boxes, which are mapped back to the image.

    Used by :class:`HeatmapProposalHook` and the proposal-recall tools, so
    training and evaluation draw the same boxes.

    Returns:
        np.ndarray: ``(N, 4)`` float ``xyxy`` boxes in ``img_bgr`` pixels,
        in the generator's order (best first).
    """
    h, w = img_bgr.shape[:2]
    s = int(img_scale)
    x = cv2.resize(img_bgr, (s, s), interpolation=cv2.INTER_LINEAR)
    if to_rgb:
        x = x[..., ::-1]
    dev = next(backbone.parameters()).device
    mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    x = (x[None].float().to(dev) - mean.to(dev)) / std.to(dev)
    boxes = generator(backbone(x)[-1], (s, s))[0].cpu().numpy()
    return boxes * np.array([w / s, h / s, w / s, h / s])


class UnreadableImageError(FileNotFoundError, ValueError):
    """An image of the set cannot be read; the message names its path."""


def draw_heatmap_proposals(images: Sequence[Tuple[str, str]], backbone: Any,
                           generator: Any, img_scale: int,
                           mean: Sequence[float], std: Sequence[float],
                           to_rgb: bool = True,
                           progress: Optional[Callable[[int, int], None]]
                           = None) -> Dict[str, Dict[str, Any]]:
    """The heat-map proposals of an image set (the one loop).

    Args:
        images: ``(file_name, path)`` of every image, in order.
        backbone: Network whose last output is the C5 map; run in eval
            mode, its training mode is restored afterwards.
        generator: A :class:`HeatmapProposalGenerator`.
        img_scale: Square side the images are resized to.
        mean, std, to_rgb: Input normalisation (the pre-training one).
        progress: Called as ``progress(done, total)`` after each image.

    Returns:
        dict: ``file_name -> dict(width, height, boxes)``, boxes ``(N, 4)``
        float64 COCO ``xywh`` best first: the ``results`` of
        :func:`write_proposal_file`.

    Raises:
        UnreadableImageError: an image cannot be read (naming it).
    """
    results = {}
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            for k, (name, path) in enumerate(images):
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise UnreadableImageError(
                        f'{path}: cannot read the image')
                h, w = img.shape[:2]
                boxes = image_heatmap_boxes(backbone, img, generator,
                                            img_scale, mean, std, to_rgb)
                results[name] = dict(
                    width=w, height=h,
                    boxes=xyxy_to_xywh(np.asarray(boxes, np.float64)))
                if progress is not None:
                    progress(k + 1, len(images))
    finally:
        backbone.train(was_training)
    return results


@MODELS.register_module()
class HeatmapBoxSource:
    """CCOP's object boxes from a heat map of the momentum encoder.

    The momentum encoder's last-stage features of the key view (view 1;
    CCOP's own key pass, so no extra backbone pass) give a heat map,
    ``HeatmapProposalGenerator`` draws centre-suppressed boxes (warm-up:
    whole-image or random boxes), which are mapped through the image into
    the query view with the crops of ``BoxAwareMultiView`` (``view_crops``,
    ``view_flips`` in the data samples' metainfo, kept by
    ``PackBoxSelfSupInputs``' default ``meta_keys``). Boxes with less than
    ``part_thr`` of their area visible in the query view are dropped; an
    image left without boxes falls back to its ``view_bboxes``.

    The warm-up reads the training progress from mmengine's message hub
    (``iter``, set by the runner before every iteration); outside a runner
    it is 0 (warm-up boxes until ``warmup_iters`` of the generator).

    Args:
        generator (dict, optional): ``HeatmapProposalGenerator`` config.
            Defaults to its defaults.
        part_thr (float): Visible fraction in the query view. Defaults to
            0.6.
    """

    def __init__(self, generator: Optional[dict] = None,
                 part_thr: float = 0.6) -> None:
        gen = dict(generator or {})
        gen.setdefault('type', 'HeatmapProposalGenerator')
        self.generator = MODELS.build(gen)
        self.part_thr = part_thr

    def __call__(self, c5_k: torch.Tensor, img_size: Tuple[int, int],
                 data_samples: List[DataSample],
                 boxes_q: List[torch.Tensor],
                 boxes_k: List[torch.Tensor]
                 ) -> Tuple[List[torch.Tensor], ...]:
        """Heat-map boxes of the key view and their query-view images.

        Args:
            c5_k (torch.Tensor): ``(B, C, h, w)`` momentum-encoder features
                of the key view, in the original batch order.
            img_size (tuple[int, int]): ``(H, W)`` of the (square) views.
            data_samples (List[DataSample]): With ``view_crops`` and
                ``view_flips`` in their metainfo.
            boxes_q, boxes_k (List[torch.Tensor]): ``view_bboxes`` per
                image, the fallback of an image left without boxes.

        Returns:
            tuple: per-image query-view and key-view boxes ``(N_b, 4)``, row
            ``i`` the same object in both views.
        """
        size = img_size[-1]
        cur_iter = MessageHub.get_current_instance().get_info('iter', 0)
        props = self.generator(c5_k, img_size, int(cur_iter))
        out_q, out_k = [], []
        for i, (ds, bk) in enumerate(zip(data_samples, props)):
            if 'view_crops' not in ds or 'view_flips' not in ds:
                raise KeyError(
                    f'data sample {i} lacks view_crops/view_flips: add them '
                    'to PackBoxSelfSupInputs(meta_keys=...)')
            crops, flips = ds.view_crops, ds.view_flips
            bq, frac = map_boxes_between_views(bk, crops[1], flips[1],
                                               crops[0], flips[0], size)
            keep = frac >= self.part_thr
            if keep.any():
                out_q.append(bq[keep])
                out_k.append(bk[keep])
            else:
                out_q.append(boxes_q[i])
                out_k.append(boxes_k[i])
        return out_q, out_k
