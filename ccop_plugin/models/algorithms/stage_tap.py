"""Forward hooks that record a backbone's stage outputs (the object branch's
features inside any mmpretrain algorithm, ``WithObjectBranch``)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn

#: Attributes of mmpretrain algorithms holding the momentum
#: ``Sequential(backbone, neck)``, tried in this order.
KEY_ENCODER_ATTRS = ('encoder_k', 'target_net', 'momentum_encoder')


class StageTap:
    """Forward hooks recording a backbone's stage outputs while armed.

    Each call of the backbone while armed adds ``(input, [stage outputs])``
    to :attr:`calls`.
    """

    def __init__(self, backbone: nn.Module, layers: Sequence[str]):
        self.layers = tuple(layers)
        self.armed = False
        self.calls: List[Tuple[torch.Tensor, List]] = []
        names = dict(backbone.named_modules())
        missing = [n for n in self.layers if n not in names]
        if missing:
            raise KeyError(
                f'ObjectBranch: backbone {type(backbone).__name__} has no '
                f'sub-module {missing} (in_layers); it has e.g. '
                f'{[n for n, _ in backbone.named_children()]}')
        backbone.register_forward_pre_hook(self._pre)
        for i, n in enumerate(self.layers):
            names[n].register_forward_hook(self._post_hook(i))

    def _pre(self, module, args):
        if self.armed and args:
            self.calls.append((args[0], [None] * len(self.layers)))

    def _post_hook(self, i: int):

        def hook(module, args, out):
            if self.armed and self.calls:
                self.calls[-1][1][i] = out

        return hook

    def take(self) -> List[Tuple[torch.Tensor, List]]:
        """The recorded calls; stops recording."""
        calls, self.calls, self.armed = self.calls, [], False
        return calls


def view_index(x: torch.Tensor, views: Sequence[torch.Tensor]) -> int:
    """Index of the view that *is* ``x`` (identity), -1 if none."""
    for v, view in enumerate(views):
        if x is view:
            return v
    return -1
