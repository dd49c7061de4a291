"""Checkpoint `inject`: LoRA injected by name into real HuggingFace models, against peft.

GPT-2 (the project's tiny GPT-2: real Conv1D layers) with targets c_attn, c_proj; MiniLM (a BERT)
with targets query, value. The same config goes to peft's get_peft_model; the learner's adapters
are set to random values and copied into peft's, and the two models must agree on the replaced
names, the trainable-parameter count and the outputs.
"""
import math
import warnings

import torch

from lora_check_utils import max_abs, one_thread
from grader.checks import as_int, check_close, expect_equal, expect_type, fail
from grader.seam import learner

# tolerance: logits / hidden states of 4-6 float32 layers computed by the same HF modules, the
# adapters' products summed in another order than peft's (observed ~1e-6); mistakes move them by 1e-2+
ATOL, RTOL = 1e-4, 1e-4

MODELS = {
    "gpt2": dict(targets=["c_attn", "c_proj"], r=4, alpha=8.0),
    "minilm": dict(targets=["query", "value"], r=8, alpha=16.0),
}


def _load(which):
    from transformers import AutoModel, GPT2LMHeadModel
    from engine.shared.models import minilm_path, tiny_gpt2_path
    if which == "gpt2":
        return GPT2LMHeadModel.from_pretrained(tiny_gpt2_path()).eval()
    return AutoModel.from_pretrained(minilm_path()).eval()


def _inputs(which, g, vocab):
    ids = torch.randint(100, vocab, (2, 12), generator=g)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _out(which, model, batch):
    with torch.no_grad():
        out = model(**batch)
    return out.logits if which == "gpt2" else out.last_hidden_state


def _peft(which, cfg):
    from peft import LoraConfig, get_peft_model
    model = _load(which)
    config = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], target_modules=cfg["targets"],
                        lora_dropout=0.0, fan_in_fan_out=(which == "gpt2"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_peft_model(model, config)


def _check_model(which, seed):
    cfg = MODELS[which]
    g = torch.Generator().manual_seed(seed)
    peft_model = _peft(which, cfg)
    batch = _inputs(which, g, peft_model.config.vocab_size)
    want_names = sorted(n.removeprefix("base_model.model.") for n, m in peft_model.named_modules()
                        if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}))
    want_trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)

    model = _load(which)
    call = f"inject_lora({type(model).__name__}, {cfg['targets']}, r={cfg['r']}, alpha={cfg['alpha']:g})"
    names = learner("inject").inject_lora(model, cfg["targets"], r=cfg["r"], alpha=cfg["alpha"])
    expect_type(names, list, what=f"{call} returns")
    expect_equal(sorted(names), want_names, what=f"{call}: the module names replaced (peft replaces "
                 "every module whose name is a target or ends with '.' + a target)")

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    outside = [n for n, _ in trainable if not (n.endswith(".A") or n.endswith(".B"))]
    if outside:
        fail(f"{call}: {len(outside)} parameters outside the adapters still require grad, e.g. "
             f"{outside[:3]}: inject_lora must freeze the whole model first, so that only A and B train")
    got_count = as_int(sum(p.numel() for _, p in trainable), what=f"{call}: trainable parameters")
    expect_equal(got_count, want_trainable, what=f"{call}: number of trainable parameters "
                 f"(peft's get_peft_model with the same LoraConfig: {want_trainable:,})")

    # random adapters, the same in both models
    with torch.no_grad():
        for name in want_names:
            mine = model.get_submodule(name)
            theirs = peft_model.get_submodule("base_model.model." + name)
            A = torch.randn(theirs.lora_A["default"].weight.shape, generator=g) / 8
            B = torch.randn(theirs.lora_B["default"].weight.shape, generator=g) / 8
            for attr, value in (("A", A), ("B", B)):
                p = getattr(mine, attr, None)
                if not isinstance(p, torch.nn.Parameter) or tuple(p.shape) != tuple(value.shape):
                    fail(f"{call}: {name}.{attr} should be an nn.Parameter of shape {tuple(value.shape)} "
                         f"(A (r, in), B (out, r)), got {type(p).__name__}"
                         f"{'' if p is None else ' ' + str(tuple(p.shape))}")
                p.copy_(value)
            theirs.lora_A["default"].weight.copy_(A)
            theirs.lora_B["default"].weight.copy_(B)
    want = _out(which, peft_model.eval(), batch)
    got = _out(which, model.eval(), batch)
    check_close(got, want, what=f"{call}: model output with the same random adapters as peft's",
                atol=ATOL, rtol=RTOL)


def test_gpt2_conv1d_targets(seed):
    with one_thread():
        _check_model("gpt2", seed)


def test_bert_query_value(seed):
    with one_thread():
        _check_model("minilm", seed)


def test_unknown_target_is_a_clear_error(seed):
    """A target that matches nothing raises ValueError and leaves the model as it was."""
    with one_thread():
        model = _load("gpt2")
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        call = "inject_lora(GPT2LMHeadModel, ['q_proj'], r=4, alpha=8)"
        try:
            learner("inject").inject_lora(model, ["q_proj"], r=4, alpha=8.0)
        except ValueError:
            pass
        else:
            fail(f"{call}: no module is named q_proj in GPT-2; expected a ValueError saying so, "
                 "not a silent no-op (a typo in a target would otherwise train nothing)")
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        expect_equal(frozen, [], what=f"{call}: parameters frozen although the call failed "
                     "(check the targets before changing anything)")
        expect_equal(sorted(n for n, _ in model.named_parameters()), sorted(before),
                     what=f"{call}: the model's parameters after a failed call")
