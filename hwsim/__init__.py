"""hwsim: cycle-level simulator and RTL co-design framework for compressed-NN accelerators.

Importing ``hwsim`` never imports Amaranth or cocotb; only the ``generate``, ``cosim`` and ``synth``
operations reach ``hwsim.rtl`` and ``hwsim.cosim``.
"""

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["HwsimError", "MacArrayConfig"]
__version__ = "0.1.0"
