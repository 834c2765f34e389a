"""The probe's classifier: an L2-regularised multinomial logistic regression
whose regularisation is chosen on a selection split."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor,
                            num_classes: int, weight_decay: float = 1e-2,
                            max_iter: int = 300
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS (float64).

    Minimises ``mean cross-entropy + weight_decay / 2 * |W|^2`` (the bias is
    not decayed) from zero weights; deterministic for given inputs.

    Returns:
        tuple: ``(W (D, C), b (C, ))``.
    """
    x = x.double()
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + \
            0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _standardise(x_train: torch.Tensor, *others: torch.Tensor):
    x_train = x_train.double()
    mu = x_train.mean(0)
    sd = x_train.std(0, unbiased=False).clamp_min(1e-6)
    return [(x.double() - mu) / sd for x in (x_train, ) + others]


def _accuracy(x, y, w, b) -> float:
    return float(((x @ w + b).argmax(1) == y).double().mean())


def probe_features(x_train: torch.Tensor, y_train: torch.Tensor,
                   x_val: torch.Tensor, y_val: torch.Tensor,
                   num_classes: int, weight_decay: float = 1e-2,
                   max_iter: int = 300,
                   classes: Optional[Sequence[str]] = None) -> Dict:
    """Fit on train (standardised with train statistics), score on val.

    Returns:
        dict: ``acc``, ``train_acc``, ``per_class`` (name -> accuracy, None
        for a class absent from val), ``chance`` (share of the most frequent
        val class), ``n_train``, ``n_val``, ``num_classes``, ``feature_dim``.
    """
    xt, xv = _standardise(x_train, x_val)
    w, b = fit_logistic_regression(xt, y_train, num_classes, weight_decay,
                                   max_iter)
    pred_v = (xv @ w + b).argmax(1)
    names = list(classes) if classes is not None else [
        str(i) for i in range(num_classes)]
    per_class = {}
    for c in range(num_classes):
        sel = y_val == c
        per_class[names[c]] = (float((pred_v[sel] == c).double().mean())
                               if sel.any() else None)
    counts = torch.bincount(y_val, minlength=num_classes)
    return dict(
        acc=float((pred_v == y_val).double().mean()),
        train_acc=_accuracy(xt, y_train, w, b),
        per_class=per_class,
        chance=float(counts.max()) / max(1, len(y_val)),
        n_train=int(len(y_train)), n_val=int(len(y_val)),
        num_classes=int(num_classes), feature_dim=int(x_train.shape[1]))


def select_regularisation(x_train: torch.Tensor, y_train: torch.Tensor,
                          x_sel: torch.Tensor, y_sel: torch.Tensor,
                          num_classes: int,
                          weight_decays: Sequence[float],
                          max_iters: Sequence[int]) -> Dict:
    """The ``(weight_decay, max_iter)`` of the grid whose fit on train
    scores best on the selection split.

    Ties go to the stronger weight decay, then to fewer iterations (the
    simpler classifier).

    Returns:
        dict: ``weight_decay``, ``max_iter`` (the choice), ``select_acc``
        (its accuracy on the selection split) and ``grid`` (one dict per
        point: ``weight_decay``, ``max_iter``, ``train_acc``,
        ``select_acc``).
    """
    if not weight_decays or not max_iters:
        raise ValueError('the selection grid is empty')
    xt, xs = _standardise(x_train, x_sel)
    grid = []
    for wd in sorted(weight_decays, reverse=True):
        for it in sorted(max_iters):
            w, b = fit_logistic_regression(xt, y_train, num_classes, wd, it)
            grid.append(dict(weight_decay=float(wd), max_iter=int(it),
                             train_acc=_accuracy(xt, y_train, w, b),
                             select_acc=_accuracy(xs, y_sel, w, b)))
    best = max(grid, key=lambda g: g['select_acc'])  # first of the ties
    return dict(weight_decay=best['weight_decay'],
                max_iter=best['max_iter'], select_acc=best['select_acc'],
                grid=grid)
