"""Per-paper experiment code: one module per notebook, named after its slug (``papers/<slug_with_underscores>.py``),
for what one paper's experiments need and no family of the library holds (a paper's named algorithms, models and
problems go to their families: optim/, solvers/, models/, problems/, metrics/, ...).

* :mod:`optrepro.papers.early_neuron_alignment` -- notebooks/early-neuron-alignment.ipynb: the two-layer ReLU
  network trained by gradient descent from a small balanced initialization, its alignment measures, separated data
  and an MNIST digit pair (Min, Mallada & Vidal, ICLR 2024).
* :mod:`optrepro.papers.neural_collapse_deep_linear` -- notebooks/neural-collapse-deep-linear.ipynb: the
  practical-network experiment of Dang et al. (ICML 2023), an MLP feature extractor with a bias-free deep linear
  head, its training and neural collapse at every head layer.
* :mod:`optrepro.papers.constrained_learning_dual_feasibility` --
  notebooks/constrained-learning-dual-feasibility.ipynb: the width sweep of Elenter, Chamon & Ribeiro (ICLR 2024),
  demographic-parity-constrained training of a batched ensemble of widths by dual ascent.
* :mod:`optrepro.papers.energy_guided_eot` -- notebooks/energy-guided-eot.ipynb: the Gaussian benchmark of
  energy-guided EOT (an MLP potential between two Gaussians, BW2-UVP against the closed-form plan).

Each is imported by its module path.
"""
