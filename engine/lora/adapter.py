"""Saving a fine-tune as a small file: only what training changed.

A LoRA fine-tune of a 22M-parameter encoder changes ~74k numbers (plus a classification head, if
any). The base weights are already on disk wherever the base model came from, so the adapter file
holds just those: a few hundred KB instead of ~90 MB, one per task, all sharing one base.

    adapter_state_dict(model)          {name: tensor} of every parameter that requires grad
    save_adapter(model, path)          torch.save of that dict (plain tensors, CPU)
    load_adapter(model, path)          load it into a model with the same LoRA layers, strictly

"What training changed" is read off requires_grad, so a head you made trainable is saved with the
adapters and frozen weights never are. The file must be loaded into a model prepared the same way
(same base, same targets and r); a missing or unexpected key is an error, never a silent skip.

Not handled: safetensors, several adapters in one file, a base checksum in the file.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters of `model` by qualified name, detached CPU copies."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_adapter(model: nn.Module, path: str | os.PathLike) -> int:
    """Write the adapter (and any other trainable parameter) to `path`; returns the file's size."""
    torch.save(adapter_state_dict(model), path)
    return os.path.getsize(path)


def load_adapter(model: nn.Module, path: str | os.PathLike) -> None:
    """Load an adapter file into `model` (its LoRA layers must already be in place)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = dict(model.named_parameters())
    missing = [k for k in adapter_state_dict(model) if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise KeyError(f"load_adapter: {path} does not fit this model (missing {missing[:4]}, "
                       f"unexpected {unexpected[:4]}); inject the same LoRA layers first")
    with torch.no_grad():
        for name, tensor in state.items():
            if own[name].shape != tensor.shape:
                raise ValueError(f"load_adapter: {name} is {tuple(tensor.shape)} in the file, "
                                 f"{tuple(own[name].shape)} in the model (a different r?)")
            own[name].copy_(tensor)
