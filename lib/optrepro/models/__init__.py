"""Model families with structural guarantees.

* :mod:`optrepro.models.monotonic` -- the constrained monotone dense layer and network of Runje & Shankaranarayana
  (ICML 2023), the sign-constrained ReLU baseline (convex, hence unable to fit non-convex monotone targets), the
  best convex monotone fit (convex regression) that bounds that baseline.
* :mod:`optrepro.models.input_convex_rnn` -- the input convex Lipschitz RNN (ICLRNN), RNN/LSTM baselines.
* :mod:`optrepro.models.input_convex_lstm` -- the input convex LSTM, a plain-LSTM baseline, control optimization
  through a surrogate.
* :mod:`optrepro.models.icnn` -- the input-convex network (ICNN) and its gradient map.
* :mod:`optrepro.models.proximal_network` -- learned proximal networks (gradients of ICNNs), the
  proximal-matching loss.
* :mod:`optrepro.models.attention_svm` -- one-layer softmax attention (W and KQ parameterizations), its risk
  gradient and gradient descent, and the max-margin Att-SVM its weights converge to in direction (Tarzanagh, Li,
  Thrampoulidis & Oymak, 2023).

* :mod:`optrepro.models.mlp` -- the plain MLP builder (:func:`mlp`) every module uses, activations by name.

All but the first and the last are imported by their module path.
"""

from .mlp import activation, mlp
from .monotonic import (
    ACTIVATIONS,
    METHODS,
    OPTIMIZERS,
    FitResult,
    MonotoneDense,
    concave,
    convex_monotone_floor,
    fit,
    max_decrease,
    monotonic_mlp,
    saturated,
    sign_constrained_relu_mlp,
    split_units,
    unconstrained_mlp,
)

__all__ = ["ACTIVATIONS", "METHODS", "OPTIMIZERS", "FitResult", "MonotoneDense", "concave", "convex_monotone_floor", "fit",
           "activation", "mlp", "max_decrease", "monotonic_mlp", "saturated", "sign_constrained_relu_mlp",
           "split_units", "unconstrained_mlp"]
