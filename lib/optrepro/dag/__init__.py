"""Learning directed acyclic graphs (DAGs) by score-based continuous and combinatorial optimization.

Modules are imported by their path (``from optrepro.dag.<module> import ...``); each one's docstring gives the
equations and the paper it comes from: ``sem`` (random DAGs, linear SEM data, the least-squares score, acyclicity
function, structural metrics), ``notears`` (NOTEARS, Zheng et al. 2018), ``topo_swaps`` (TOPO, Deng et al. 2023),
``dagma`` (log-det acyclicity and path following, Bello et al. 2022), ``colide`` (concomitant scale-aware scores,
Saboksayr et al. 2024).
"""
