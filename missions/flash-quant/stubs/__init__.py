"""Your flash-quant package: fast attention and cheap weights (see brief.md)."""
