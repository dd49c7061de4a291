"""Checkpoint `merge`: folding s·B·A into the base weight and back; saving only the adapter.

Merged weights are compared with W + s·B·A computed here (and, for GPT-2, with peft's
merge_and_unload); the adapter file is read back here with torch.load and loaded into a fresh base.
"""
import math
import os
import tempfile
import warnings

import torch
import torch.nn as nn

from lora_check_utils import (adapter_of, conv1d, copy_module, linear, one_thread, set_adapter)
from grader.checks import (as_int, check_close, expect, expect_between, expect_close, expect_equal,
                           expect_type, fail, is_close)
from grader.seam import learner

# tolerance: float32 weights of width <= 64 plus an update; W + d is rounded once (<= 1 ulp ~ 1e-7)
W_ATOL = 1e-6
# tolerance: outputs of a merged layer vs the adapter path: the same sum in another order
Y_ATOL, Y_RTOL = 1e-5, 1e-5


def _random_lora(layer_cls, base, r, alpha, g):
    layer = layer_cls(base, r=r, alpha=alpha)
    n_in, n_out = layer.A.shape[1], layer.B.shape[0]
    A = torch.randn(r, n_in, generator=g) / math.sqrt(n_in)
    B = torch.randn(n_out, r, generator=g) * 0.5
    set_adapter(layer, A, B)
    return layer.eval(), A, B


def _merge_case(seed, kind):
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        r, alpha = 4, 8.0
        s = alpha / r
        if kind == "linear":
            base = linear(g, 40, 24)
            layer_cls, transpose = learner("lora_linear").LoRALinear, False
            label = "LoRALinear(nn.Linear(40, 24), r=4, alpha=8)"
        else:
            base = conv1d(g, 40, 24)
            layer_cls, transpose = learner("conv1d").LoRAConv1D, True
            label = "LoRAConv1D(Conv1D(nf=24, nx=40), r=4, alpha=8)"
        W0 = base.weight.detach().clone()
        x = torch.randn(5, 40, generator=g)
        merge_mod = learner("merge")
        layer, A, B = _random_lora(layer_cls, base, r, alpha, g)
        adapter_of(layer, label, r, 40, 24)
        delta = s * (B @ A)
        delta = delta.T if transpose else delta
        y_before = layer(x).detach()
        want_y = (x @ (W0.T if not transpose else W0) + base.bias.detach() + s * (x @ A.T @ B.T)).detach()
        # tolerance: the adapter path before merging, against the formula computed here
        expect_close(y_before, want_y, what=f"{label}: output before merging", atol=Y_ATOL, rtol=Y_RTOL)

        merge_mod.merge(layer)
        what = f"merge({label})"
        expect(layer.merged is True, f"{what}: layer.merged should be True afterwards (forward reads it)")
        W1 = torch.Tensor.detach(layer.base.weight).clone()
        expect_type(W1, torch.Tensor, what=f"{what}: base.weight")
        check_close(W1, W0 + delta, what=f"{what}: base.weight = W + s·B·A" + ("ᵀ" if transpose else ""),
                    atol=W_ATOL, diagnose=lambda got, want: (
                        "merge without the scaling: W + B·A was added; fold s·B·A (use delta_weight())"
                        if is_close(got, W0 + (B @ A if not transpose else (B @ A).T), atol=W_ATOL) else
                        "the weight did not change: merge must add s·B·A into base.weight in place"
                        if is_close(got, W0, atol=0.0) else
                        "the update was added untransposed: Conv1D's weight is (in, out)"
                        if transpose and is_close(got, W0 + delta.T, atol=W_ATOL) else None))
        y_merged = layer(x)
        check_close(y_merged, want_y, what=f"{what}: output after merging (must equal the output before)",
                    atol=Y_ATOL, rtol=Y_RTOL, diagnose=lambda got, want: (
                        "the adapter is added twice: once inside W, once by forward. When merged is "
                        "True, forward must return the base layer's output alone"
                        if is_close(got, want + s * (x @ A.T @ B.T), atol=1e-4, rtol=1e-4) else None))

        merge_mod.unmerge(layer)
        what = f"unmerge({label}) after merge"
        expect(layer.merged is False, f"{what}: layer.merged should be False again")
        W2 = torch.Tensor.detach(layer.base.weight).clone()
        check_close(W2, W0, what=f"{what}: base.weight back to the original W", atol=W_ATOL,
                    diagnose=lambda got, want: (
                        "unmerge did not restore W: the update is still inside the weight"
                        if is_close(got, W0 + delta, atol=W_ATOL) else
                        "unmerge did not restore W: it subtracted B·A without the scaling"
                        if is_close(got, W0 + delta - (delta / s), atol=W_ATOL) else
                        "unmerge did not restore W"))
        check_close(layer(x), want_y, what=f"{what}: output (the adapter path again)", atol=Y_ATOL,
                    rtol=Y_RTOL, diagnose=lambda got, want: "unmerge not restoring the adapter path")


def test_merge_unmerge_linear(seed):
    _merge_case(seed, "linear")


def test_merge_unmerge_conv1d(seed):
    _merge_case(seed, "conv1d")


def test_merge_all_gpt2_matches_peft(seed):
    """merge_all on the tiny GPT-2 gives the weights of peft's merge_and_unload."""
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2LMHeadModel
    from engine.shared.models import tiny_gpt2_path
    with one_thread():
        g = torch.Generator().manual_seed(seed)
        targets, r, alpha = ["c_attn", "c_proj"], 4, 8.0
        theirs = GPT2LMHeadModel.from_pretrained(tiny_gpt2_path())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = get_peft_model(theirs, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                                       lora_dropout=0.0, fan_in_fan_out=True))
        mine = GPT2LMHeadModel.from_pretrained(tiny_gpt2_path()).eval()
        names = learner("inject").inject_lora(mine, targets, r=r, alpha=alpha)
        expect_type(names, list, what="inject_lora(...) returns")
        with torch.no_grad():
            for name in names:
                t = theirs.get_submodule("base_model.model." + name)
                A = torch.randn(t.lora_A["default"].weight.shape, generator=g) / 8
                B = torch.randn(t.lora_B["default"].weight.shape, generator=g) / 8
                t.lora_A["default"].weight.copy_(A)
                t.lora_B["default"].weight.copy_(B)
                set_adapter(mine.get_submodule(name), A, B)
        merged = theirs.merge_and_unload()
        want = {n: p.detach().clone() for n, p in merged.named_parameters()}
        ids = torch.randint(0, mine.config.vocab_size, (2, 10), generator=g)
        with torch.no_grad():
            want_logits = merged(ids).logits
        n = as_int(learner("merge").merge_all(mine), what="merge_all(model) returns")
        expect_equal(n, len(names), what="merge_all(model): number of layers merged")
        for name in names:
            got = torch.Tensor.detach(mine.get_submodule(name).base.weight)
            check_close(got, want[name + ".weight"], what=f"merge_all: {name}.base.weight vs peft's "
                        "merge_and_unload", atol=W_ATOL, rtol=1e-6)
        with torch.no_grad():
            got_logits = mine(ids).logits
        # tolerance: logits of 4 float32 blocks from merged weights equal up to ~1 ulp
        check_close(got_logits, want_logits, what="merged GPT-2 logits vs peft's merged model",
                    atol=1e-4, rtol=1e-4)


class _Classifier(nn.Module):
    """MiniLM with LoRA and a small trainable head, built by this check (the adapter file's owner)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, ids):
        return self.head(self.encoder(input_ids=ids).last_hidden_state.mean(1))


def _minilm_classifier(seed):
    from transformers import AutoModel
    from engine.shared.models import minilm_path
    encoder = AutoModel.from_pretrained(minilm_path()).eval()
    learner("inject").inject_lora(encoder, ["query", "value"], r=8, alpha=16.0)
    model = _Classifier(encoder).eval()
    torch.manual_seed(seed)
    with torch.no_grad():                       # a "trained" adapter and head
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape) / 8)
    return model


def test_adapter_file_small_and_reloads(seed):
    with one_thread():
        model = _minilm_classifier(seed)
        want_keys = sorted(n for n, p in model.named_parameters() if p.requires_grad)
        expect(len(want_keys) == 26, f"MiniLM with LoRA on query/value + a head should have 24 adapter "
               f"matrices and the head's weight and bias trainable, got {len(want_keys)}: {want_keys[:4]}")
        ids = torch.randint(1000, 30000, (3, 9), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want = model(ids)
        adapter = learner("adapter")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "adapter.pt")
            adapter.save_adapter(model, path)
            size = os.path.getsize(path)
            state = torch.load(path, map_location="cpu", weights_only=True)
            expect_type(state, dict, what="torch.load(the adapter file)")
            extra = sorted(k for k in state if k not in want_keys)
            if extra:
                fail(f"save_adapter: the file holds frozen weights too ({len(extra)} extra entries, e.g. "
                     f"{extra[:3]}): the adapter saved with the whole model. Save only the parameters "
                     "that require grad (adapters and head); the base is on disk already")
            expect_equal(sorted(state), want_keys, what="save_adapter: the entries in the file")
            n_numbers = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
            expect_between(size / 1024, 0, (4 * n_numbers + 64 * 1024) / 1024,
                           what="size of the adapter file (KB)",
                           why=f"{n_numbers:,} fp32 numbers are {4 * n_numbers / 1024:.0f} KB; the base "
                               "model is ~87 MB and must not be in the file")

            fresh = _minilm_classifier(seed + 1)       # same base, different adapter and head
            adapter.load_adapter(fresh, path)
        with torch.no_grad():
            got = fresh(ids)
        # tolerance: the same weights, the same operations: equal up to float noise
        check_close(got, want, what="a fresh MiniLM + LoRA + head after load_adapter: logits vs the "
                    "saved model's", atol=1e-5, rtol=1e-5)
