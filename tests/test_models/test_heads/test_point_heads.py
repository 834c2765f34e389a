"""Hand-checked cases for the point losses of PLRC's heads."""
import numpy as np
import torch

import ccop_plugin  # noqa: F401
from ccop_plugin.models.heads.point_heads import (
    dino_distillation_loss,
    multi_positive_infonce,
    point_pair_labels,
)


def test_point_pair_labels_and_loss():
    ids_q = torch.tensor([0, 0, 1, 2])
    ids_k = torch.tensor([0, 1, 1, 3])
    pos = point_pair_labels(ids_q, ids_k)
    assert pos.tolist() == [[True, False, False, False]] * 2 + [
        [False, True, True, False], [False] * 4]
    sim = torch.zeros(4, 4)
    # uniform logits: each positive has prob 1/4 -> loss log 4, rows w/o
    # positives ignored
    loss = multi_positive_infonce(sim, pos, 0.2)
    assert torch.isclose(loss, torch.log(torch.tensor(4.)))
    sim2 = torch.where(pos, 10., -10.)
    assert multi_positive_infonce(sim2, pos, 0.2) < 0.8
    assert multi_positive_infonce(sim, torch.zeros_like(pos), 0.2) == 0


def test_distillation_loss_by_hand():
    """2 query points x 3 key points, T_s 0.5, T_t 1, centre (0, 0, 1)."""
    center = torch.tensor([[0., 0., 1.]])
    # student logits / T_s: row 0 (ln 2, 0, 0) -> p = (1/2, 1/4, 1/4);
    # row 1 uniform -> p = 1/3
    s = torch.tensor([[0.5 * np.log(2.), 0., 0.], [0., 0., 0.]],
                     requires_grad=True)
    # teacher minus centre: row 0 (0, 0, 0) -> uniform 1/3;
    # row 1 (ln 3, 0, 0) -> (3/5, 1/5, 1/5)
    t = torch.tensor([[0., 0., 1.], [np.log(3.), 0., 1.]])
    loss = dino_distillation_loss(s, t, center, 0.5, 1.)
    # CE0 = -(1/3)(ln 1/2 + 2 ln 1/4) = 5/3 ln 2; CE1 = ln 3
    expected = (5. / 3. * np.log(2.) + np.log(3.)) / 2.
    assert abs(loss.item() - expected) < 1e-6
    loss.backward()  # gradient reaches the student only
    assert s.grad.abs().sum() > 0
    # without the centre, teacher row 0 is (1, 1, e) / (2 + e):
    # CE0 = (ln 2 + 2 ln 2 + 2e ln 2) / (2 + e)
    e1 = np.e
    ce0 = (3. + 2. * e1) * np.log(2.) / (2. + e1)
    loss0 = dino_distillation_loss(s, t, torch.zeros(1, 3), 0.5, 1.)
    assert abs(loss0.item() - (ce0 + np.log(3.)) / 2.) < 1e-6
    # no points: zero with a graph
    e = torch.zeros(0, 3, requires_grad=True)
    z = dino_distillation_loss(e, e.detach(), center, 0.5, 1.)
    assert z.item() == 0 and z.requires_grad
