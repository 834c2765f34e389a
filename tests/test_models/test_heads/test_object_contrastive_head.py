"""ObjectContrastiveHead: InfoNCE over the queue."""
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils import queue_logits


def test_object_contrastive_head_infonce():
    head = MODELS.build(dict(type='ObjectContrastiveHead', temperature=0.2))
    torch.manual_seed(0)
    q = F.normalize(torch.randn(3, 8), dim=1)
    k = F.normalize(torch.randn(3, 8), dim=1)
    queue = F.normalize(torch.randn(8, 5), dim=0)
    q.requires_grad_()
    loss = head.loss(*queue_logits(q, k, queue))  # the image head's (pos, neg)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], 1) / 0.2
    want = (-logits.log_softmax(1)[:, 0]).mean()
    assert torch.allclose(loss, want)
    empty = head.loss(*queue_logits(q[:0], k[:0], queue))
    assert empty.item() == 0 and empty.requires_grad
