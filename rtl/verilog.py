"""The Verilog-generation skeleton every family's ``generate_verilog`` shares.

A family's generator builds its top component, then calls :func:`generate`: the Verilog text is the family's
Verilator lint waivers followed by Amaranth's Verilog of the top (named ``cfg.top_name``, no source
locations), and the metadata is the top name, the family, the config, the port signature and the
family's own entries (``derived``, ``debug``, ...), in the order the family gives them.
"""

from __future__ import annotations

from amaranth.back import verilog

__all__ = ["generate"]


def generate(cfg, top, waivers: str, family: str | None = None, **meta) -> tuple[str, dict]:
    """``(waivers + Verilog of top, metadata)`` for the top ``cfg.top_name``.

    The metadata starts with ``top``, ``family`` (default ``cfg.family_key()``) and ``config``
    (``cfg.to_dict()``); the keyword arguments follow in their order, and ``signature`` (the top's port
    signature as JSON) is added last unless given among them (``signature=None`` places it first among them).
    """
    text = waivers + verilog.convert(top, name=cfg.top_name, emit_src=False)
    out = {"top": cfg.top_name, "family": cfg.family_key() if family is None else family, "config": cfg.to_dict()}
    for key, value in meta.items():
        out[key] = top.metadata.as_json() if key == "signature" and value is None else value
    if "signature" not in out:
        out["signature"] = top.metadata.as_json()
    return text, out
