"""The one exception type of hwsim."""

__all__ = ["HwsimError"]


class HwsimError(ValueError):
    """Bad configuration or input.

    The message names the field, the value given and what is allowed, on one line, so that the CLI can
    print it as is and exit with status 2.
    """
