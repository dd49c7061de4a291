"""Saving a fine-tune as a small file: only what training changed (brief.md, section 6).

    adapter_state_dict(model)          {name: tensor} of every parameter that requires grad
    save_adapter(model, path)          torch.save of that dict; returns the file's size in bytes
    load_adapter(model, path)          load it into a model with the same LoRA layers, strictly

A missing or unexpected key is an error (KeyError), a wrong shape too (ValueError), never a silent skip.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters of `model` by qualified name, detached CPU copies."""
    raise NotImplementedError("adapter_state_dict: see brief.md, section 6 (Saving only the adapter)")


def save_adapter(model: nn.Module, path: str | os.PathLike) -> int:
    """Write the adapter (and any other trainable parameter) to `path`; returns the file's size."""
    raise NotImplementedError("save_adapter: see brief.md, section 6 (Saving only the adapter)")


def load_adapter(model: nn.Module, path: str | os.PathLike) -> None:
    """Load an adapter file into `model` (its LoRA layers must already be in place)."""
    raise NotImplementedError("load_adapter: see brief.md, section 6 (Saving only the adapter)")
