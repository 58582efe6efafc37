"""Re-export of the single hwsim exception type (defined in ``hwsim.models.errors``, the lowest layer)."""

from hwsim.models.errors import HwsimError

__all__ = ["HwsimError"]
