"""Spatial-noise curriculum of CCOP (arXiv 2111.13651).

For every key box the curriculum draws ``n_jitter`` jittered copies and appends
the box itself (as the reference code does, ``append_ori=True``)::

    cx' = cx + U(-0.5, 0.5) * mag_xy * w
    cy' = cy + U(-0.5, 0.5) * mag_xy * h
    w'  = w * exp(U(-0.5, 0.5) * mag_wh)
    h'  = h * exp(U(-0.5, 0.5) * mag_wh)

clipped to the key view. A candidate is *valid* when its IoU with the box is at
least the current threshold; the original box (IoU 1) is always valid. The
positive key of a query RoI is the valid candidate whose key embedding is the
*least* similar to the query. Over training (driven by
:class:`ccop_plugin.engine.hooks.CurriculumHook`, linear by default) the IoU
threshold goes 0.8 -> 0.4, ``mag_xy`` 0.15 -> 0.6 and ``mag_wh`` 0.35 -> 1.4.

Everything is vectorised: the candidates of all boxes of the batch form one
``(M, n_jitter + 1, 4)`` tensor that is pooled in one pass of the RoI neck
(one ``roi_align`` per FPN level), with no Python loop over boxes.
The current values are buffers, so they are saved with the model checkpoint.
The jitter draws from the curriculum's own ``torch.Generator`` (on the CPU,
seeded from ``seed`` or, by default, from ``torch.initial_seed()`` when the
module is built, i.e. from the run's seed), not from the global RNG; its state
is read and set with :meth:`get_rng_state` / :meth:`set_rng_state`, which
:class:`ccop_plugin.engine.hooks.RandomStateHook` saves in every checkpoint
so that a resumed run draws the same boxes as an uninterrupted one.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from .rois import boxes_to_rois


def paired_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of broadcastable ``(..., 4)`` ``xyxy`` boxes.

    A pair with zero union gets IoU 0.
    """
    lt = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    rb = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    area1 = (boxes1[..., 2:] - boxes1[..., :2]).clamp(min=0).prod(dim=-1)
    area2 = (boxes2[..., 2:] - boxes2[..., :2]).clamp(min=0).prod(dim=-1)
    union = area1 + area2 - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12),
                       torch.zeros_like(union))


@MODELS.register_module()
class BoxJitterCurriculum(BaseModule):
    """Box-jitter curriculum that picks the hardest valid positive RoI.

    Args:
        n_jitter (int): Jittered boxes per key box (the box itself is added as
            the last candidate). Defaults to 10.
        iou_thr (Sequence[float]): Start and end IoU threshold of a valid
            candidate. Defaults to (0.8, 0.4).
        mag_xy (Sequence[float]): Start and end centre-jitter magnitude
            (fraction of the box size). Defaults to (0.15, 0.6).
        mag_wh (Sequence[float]): Start and end log-size-jitter magnitude.
            Defaults to (0.35, 1.4).
        seed (int, optional): Seed of the jitter's generator. Defaults to
            ``torch.initial_seed()`` at construction (the run's seed).
        init_cfg (dict, optional): Unused, for the BaseModule interface.
    """

    def __init__(self,
                 n_jitter: int = 10,
                 iou_thr: Sequence[float] = (0.8, 0.4),
                 mag_xy: Sequence[float] = (0.15, 0.6),
                 mag_wh: Sequence[float] = (0.35, 1.4),
                 seed: Optional[int] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if n_jitter < 0:
            raise ValueError(f'n_jitter must be >= 0, got {n_jitter}')
        self.n_jitter = int(n_jitter)
        self.ranges = dict(
            iou_thr=tuple(float(v) for v in iou_thr),
            mag_xy=tuple(float(v) for v in mag_xy),
            mag_wh=tuple(float(v) for v in mag_wh))
        for name, rng in self.ranges.items():
            if len(rng) != 2:
                raise ValueError(f'{name} must be (start, end), got {rng}')
        # current values, set every iteration by CurriculumHook
        self.register_buffer(
            'current',
            torch.tensor([self.ranges['iou_thr'][0], self.ranges['mag_xy'][0],
                          self.ranges['mag_wh'][0]], dtype=torch.float32))
        # the jitter's own random stream (CPU; its state goes into the
        # checkpoint through RandomStateHook); seeding reads, not draws from,
        # the global RNG, so building the module changes no other stream
        self.generator = torch.Generator()
        self.generator.manual_seed(
            int(torch.initial_seed() if seed is None else seed) % 2**63)

    def get_rng_state(self) -> torch.Tensor:
        """State of the jitter's generator (a CPU ``uint8`` tensor)."""
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        """Restore a state returned by :meth:`get_rng_state`."""
        self.generator.set_state(torch.as_tensor(state, dtype=torch.uint8))

    _NAMES = ('iou_thr', 'mag_xy', 'mag_wh')

    def get_values(self) -> dict:
        """Current ``iou_thr``, ``mag_xy`` and ``mag_wh`` as floats."""
        return {n: float(v) for n, v in zip(self._NAMES, self.current)}

    def set_values(self, **values: float) -> None:
        """Set some of ``iou_thr``, ``mag_xy``, ``mag_wh``."""
        for name, value in values.items():
            if name not in self._NAMES:
                raise KeyError(f'unknown curriculum value {name!r}; '
                               f'expected one of {self._NAMES}')
            self.current[self._NAMES.index(name)] = float(value)

    def set_progress(self, factor: float) -> None:
        """Interpolate every value: ``start + factor * (end - start)``."""
        self.set_values(
            **{
                n: r[0] + factor * (r[1] - r[0])
                for n, r in self.ranges.items()
            })

    @torch.no_grad()
    def jitter(
            self, boxes: torch.Tensor,
            img_shape: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw the candidates of every box.

        Args:
            boxes (torch.Tensor): ``(M, 4)`` ``xyxy`` key boxes.
            img_shape (Tuple[int, int]): ``(H, W)`` of the key view.

        Returns:
            Tuple[torch.Tensor, torch.Tensor]:
            - candidates: ``(M, n_jitter + 1, 4)``, the box itself last.
            - valid: ``(M, n_jitter + 1)`` bool, IoU with the box >= the
              current threshold (the box itself always True).
        """
        boxes = boxes.float()
        num = boxes.shape[0]
        ctr = (boxes[:, :2] + boxes[:, 2:]) * 0.5  # (M, 2)
        size = boxes[:, 2:] - boxes[:, :2]  # (M, 2)
        # current values stay on the device: no host sync per iteration
        cur = self.current.to(boxes.device)
        # drawn on the CPU from the curriculum's own generator (one draw for
        # both, reproducible on any device), then moved to the boxes' device
        u = torch.rand(2, num, self.n_jitter, 2,
                       generator=self.generator).to(boxes.device)
        t_xy = (u[0] - 0.5) * cur[1]
        t_wh = (u[1] - 0.5) * cur[2]
        new_ctr = ctr[:, None] + t_xy * size[:, None]
        new_size = size[:, None] * torch.exp(t_wh)
        jit = torch.cat([new_ctr - 0.5 * new_size, new_ctr + 0.5 * new_size],
                        dim=-1)
        h, w = img_shape
        jit[..., 0::2] = jit[..., 0::2].clamp(min=0, max=w)
        jit[..., 1::2] = jit[..., 1::2].clamp(min=0, max=h)
        candidates = torch.cat([jit, boxes[:, None]], dim=1)
        valid = paired_box_iou(candidates, boxes[:, None]) >= cur[0]
        valid[:, -1] = True
        return candidates, valid

    @torch.no_grad()
    def select(self, query: torch.Tensor, cand_keys: torch.Tensor,
               valid: torch.Tensor) -> torch.Tensor:
        """Index of the least query-similar valid candidate of every box.

        Args:
            query (torch.Tensor): ``(M, C)`` normalised query embeddings.
            cand_keys (torch.Tensor): ``(M, K, C)`` normalised candidate keys.
            valid (torch.Tensor): ``(M, K)`` bool; every row has a True.

        Returns:
            torch.Tensor: ``(M,)`` long indices into ``K``.
        """
        sim = torch.einsum('mc,mkc->mk', query.detach(), cand_keys)
        sim = sim.masked_fill(~valid, float('inf'))
        return sim.argmin(dim=1)

    @torch.no_grad()
    def positive_keys(
        self, boxes: Sequence[torch.Tensor], img_shape: Tuple[int, int],
        query: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The positive key of every query RoI and the original box's key.

        Jitters every key box (:meth:`jitter`, one draw for the batch),
        turns the candidates into RoIs (:func:`boxes_to_rois`, image-major
        as the key RoIs), embeds only the *valid*
        candidates in one call of ``embed`` (invalid ones are never selected;
        the RoI neck works per RoI, so the result is the same and 35-50%
        cheaper) and picks the least query-similar one (:meth:`select`).

        Args:
            boxes (Sequence[torch.Tensor]): Per image ``(N_b, 4)`` key boxes
                in the key view (``M = sum N_b``, the rows of the query
                RoIs).
            img_shape (tuple): ``(H, W)`` of the key view.
            query (torch.Tensor): ``(M, C)`` normalised query embeddings.
            embed (callable): ``(R, 5)`` RoIs -> ``(R, C)`` normalised keys.

        Returns:
            tuple: ``(M, C)`` positive keys and ``(M, C)`` keys of the
            original boxes (the last candidate).
        """
        counts = [b.shape[0] for b in boxes]
        cands, valid = self.jitter(
            torch.cat([b.reshape(-1, 4) for b in boxes]), img_shape)
        num_rois, num_cands = cands.shape[:2]
        cand_rois = boxes_to_rois(
            [c.reshape(-1, 4) for c in cands.split(counts)])
        flat_valid = valid.reshape(-1)
        emb = embed(cand_rois[flat_valid])
        cand_k = emb.new_zeros(flat_valid.shape[0], emb.shape[-1])
        cand_k[flat_valid] = emb
        cand_k = cand_k.reshape(num_rois, num_cands, emb.shape[-1])
        pos_idx = self.select(query, cand_k, valid)
        arange = torch.arange(num_rois, device=cand_k.device)
        return cand_k[arange, pos_idx], cand_k[:, -1]
