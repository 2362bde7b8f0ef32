"""Optimizers: one ``torch.optim.Optimizer`` family on one functional core.

* :mod:`.functional` -- the update rules, written once: :func:`adam_step` (Adam, AMSGrad), :func:`sgd_step`
  (heavy-ball / Nesterov momentum).
* :class:`Adam` -- Kingma & Ba (2015); :class:`AMSGrad` -- Reddi, Kale & Kumar (2018).
* :class:`SGD` -- gradient descent with heavy-ball momentum (Polyak, 1964).
* :class:`Optimizer` -- the base: ``torch.optim.Optimizer`` without the ~1 s first-call import of ``torch._dynamo``.
"""

from .adam import AMSGrad, Adam
from .base import Optimizer
from .functional import adam_step, sgd_step
from .sgd import SGD

__all__ = ["AMSGrad", "Adam", "Optimizer", "SGD", "adam_step", "sgd_step"]
