"""Variational inference. Modules are imported by their path:

* :mod:`.gaussian_bw` -- Gaussian VI in the Bures-Wasserstein space: FB-GVI (Diao, Balasubramanian, Chewi, Salim;
  ICML 2023) and Bures-Wasserstein gradient descent (Lambert, Chewi, Bach, Bonnabel, Rigollet; NeurIPS 2022).
"""
