"""Analysis of measured curves: :mod:`optrepro.analysis.rates` (convergence-rate fits)."""
from .rates import decade_growth, geometric_rate, power_law_exponent

__all__ = ["geometric_rate", "power_law_exponent", "decade_growth"]
