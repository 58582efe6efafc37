"""Compressed-model formats, compression algorithms and bit-exact NumPy references (``hwsim.models``).

This package depends on NumPy, SciPy and NetworkX only; it never imports ``hwsim.rtl`` or ``hwsim.cosim``.
"""
