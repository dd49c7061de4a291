"""Checkpoint `model`: the whole GPT. With the reference's weights the logits and the loss match;
dropout is on in training and off in evaluation; the head is tied to the token embedding; a fresh
model's loss is about ln(vocab_size) and its residual projections start smaller (GPT-2's init)."""
import math

import numpy as np
import torch

from engine.gpt.model import GPT as RefGPT
from gpt_check_utils import (HYPOTHESIS_TOL, expect_pair, expect_tensor, learner_config,
                             load_reference_weights, one_thread, randomize_, ref_config)
from grader.checks import (as_float, check_close, expect, expect_between, expect_close, expect_equal,
                           expect_type, fail, is_close, to_numpy)
from grader.seam import learner

# tolerance: float32 through 2 blocks and a 65-way head, logits of size ~1-5; correct code agrees
# to ~1e-5, so 1e-4 abs + 1e-4 rel.
ATOL, RTOL = 1e-4, 1e-4
# tolerance: the loss is a mean of 3·T log-probabilities of size ~5; summation order moves it ~1e-6
LOSS_TOL = 1e-5

CFG = dict(vocab_size=65, block_size=24, n_layer=2, n_head=4, d_model=32)


def _reference(seed, **overrides):
    """A reference GPT with weights moved away from init (so every parameter shows in the output)."""
    torch.manual_seed(seed)
    return randomize_(RefGPT(ref_config(**{**CFG, **overrides})), seed, std=0.05).eval()


def _learner_model(ref, what, **overrides):
    mine = learner("model").GPT(learner_config(**{**CFG, **overrides}))
    load_reference_weights(mine, ref.state_dict(), what)
    return mine.eval()


def _run_blocks(ref, x):
    for block in ref.blocks:
        x = block(x)
    return x


def test_logits_match_reference(seed):
    with one_thread():
        ref = _reference(seed)
        g = torch.Generator().manual_seed(seed)
        B, T = 3, int(torch.randint(8, CFG["block_size"] + 1, (1,), generator=g))
        idx = torch.randint(0, CFG["vocab_size"], (B, T), generator=g)
        targets = torch.randint(0, CFG["vocab_size"], (B, T), generator=g)
        with torch.no_grad():
            want, want_loss = ref(idx, targets)
            no_pos = ref.lm_head(ref.norm_f(_run_blocks(ref, ref.tok_emb(idx))))
            no_final = ref.lm_head(_run_blocks(ref, ref.tok_emb(idx) + ref.pos_emb(torch.arange(T))))
        what = f"GPT(vocab 65, 2 layers, 4 heads, d_model 32) on idx {tuple(idx.shape)}"
        mine = _learner_model(ref, what)
        with torch.no_grad():
            got, loss = expect_pair(mine(idx.clone(), targets.clone()), f"{what}: forward(idx, targets)")
        expect_tensor(got, (B, T, CFG["vocab_size"]), f"{what}: logits (B, T, vocab_size)")

        def diagnose(got, want):
            if is_close(got, no_pos, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL):
                return "looks like the position embedding is not added (pos_emb(arange(T)))"
            if is_close(got, no_final, atol=HYPOTHESIS_TOL, rtol=HYPOTHESIS_TOL):
                return "looks like the final norm (norm_f) is skipped before lm_head"
            return None
        check_close(got, want, what=f"{what}: logits", atol=ATOL, rtol=RTOL, diagnose=diagnose)
        expect_tensor(loss, (), f"{what}: loss (a 0-d tensor)")
        expect_close(loss, want_loss, what=f"{what}: loss = cross-entropy of logits vs targets",
                     atol=LOSS_TOL, rtol=LOSS_TOL)


def test_no_targets_no_loss(seed):
    with one_thread():
        ref = _reference(seed)
        idx = torch.randint(0, CFG["vocab_size"], (2, 5), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want, _ = ref(idx)
        what = "GPT(...)(idx) without targets"
        mine = _learner_model(ref, what)
        with torch.no_grad():
            got, loss = expect_pair(mine(idx), what)
        expect(loss is None, f"{what}: the loss should be None when no targets are given, got {loss!r}")
        expect_close(got, want, what=f"{what}: logits", atol=ATOL, rtol=RTOL)


def test_dropout_only_in_training(seed):
    """With dropout = 0.5: eval() gives the reference's logits exactly, every time; train() drops."""
    with one_thread():
        ref = _reference(seed, dropout=0.5)
        idx = torch.randint(0, CFG["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want, _ = ref(idx)                          # eval mode: dropout is off
        what = "GPT(dropout=0.5) in eval mode"
        mine = _learner_model(ref, what, dropout=0.5)
        torch.manual_seed(seed)
        with torch.no_grad():
            first, _ = expect_pair(mine(idx), f"{what}: forward(idx)")
            second, _ = expect_pair(mine(idx), f"{what}: forward(idx)")
        expect_tensor(first, want.shape, f"{what}: logits")

        def diagnose(got, want):
            if not is_close(second, got, atol=ATOL, rtol=RTOL):
                return ("two forward passes in eval mode gave different logits: dropout is still "
                        "active in eval mode. Use nn.Dropout modules (model.eval() switches them "
                        "off), or F.dropout(x, p, training=self.training); F.dropout's default is "
                        "training=True")
            return None
        check_close(first, want, what=f"{what}: logits", atol=ATOL, rtol=RTOL, diagnose=diagnose)
        mine.train()
        with torch.no_grad():
            dropped, _ = expect_pair(mine(idx), "GPT(dropout=0.5) in train mode: forward(idx)")
        expect_tensor(dropped, want.shape, "GPT(dropout=0.5) in train mode: logits")
        # with half of every embedding and branch output zeroed, the logits move by ~0.1 or more; a
        # model that never applies dropout moves them by 0 (float noise only)
        change = float(np.abs(to_numpy(dropped) - to_numpy(want)).max())
        expect_between(change, 1e-3, None, what="GPT(dropout=0.5) in train mode: the largest change of "
                       "a logit from the eval-mode output",
                       why="dropout is never applied: apply nn.Dropout(cfg.dropout) to the embeddings "
                           "(after adding tok_emb and pos_emb) and to the output of each residual "
                           "branch (after attn's out_proj and after the MLP), brief section 5")


def test_weight_tying(seed):
    with one_thread():
        want_n = sum(p.numel() for p in _reference(seed).parameters())
        V = CFG["vocab_size"]
        mine = learner("model").GPT(learner_config(**CFG))
        head, emb = getattr(mine, "lm_head", None), getattr(mine, "tok_emb", None)
        if head is None or emb is None:
            fail("GPT needs the attributes tok_emb (nn.Embedding) and lm_head (nn.Linear, no bias); "
                 "see the layout in brief.md, section 5")
        expect(head.weight is emb.weight,
               "GPT: lm_head.weight is not tied to tok_emb.weight (weight tying): they must be the "
               "same Parameter object, e.g. self.lm_head.weight = self.tok_emb.weight")
        got_n = sum(int(p.numel()) for p in mine.parameters())
        hint = " (an lm_head bias?)" if got_n - want_n == V else ""
        expect_equal(got_n, want_n, what=f"number of parameters of GPT with {CFG}{hint}")


def test_loss_at_init_is_ln_vocab(seed):
    """A model that knows nothing spreads its bets evenly: loss ~ ln(V). A large init does not."""
    with one_thread():
        V = 84
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, V, (4, 24), generator=g)
        targets = torch.randint(0, V, (4, 24), generator=g)
        want = math.log(V)
        torch.manual_seed(seed)
        mine = learner("model").GPT(learner_config(**{**CFG, "vocab_size": V, "d_model": 64})).eval()
        with torch.no_grad():
            _, loss = expect_pair(mine(idx, targets), "GPT at init: forward(idx, targets)")
        # tolerance: with std-0.02 weights the logits have std ~0.02*sqrt(C) ~ 0.16, which raises the
        # loss above ln V by about var/2 ~ 0.01; 0.1 allows for that and for sampling noise, while a
        # default nn.Embedding init (std 1) tied to the head gives a loss of 10 or more.
        expect_between(as_float(loss, what="GPT loss at init"), want - 0.1, want + 0.1,
                       what=f"loss of a freshly initialised GPT (expected about ln({V}) = {want:.3f})",
                       why="initialise Linear and Embedding weights with normal(0, 0.02) and biases "
                           "with 0 (brief, section 5); the tied embedding's default std of 1 makes "
                           "the first logits huge")


# The init test: 8 layers, so the residual projections start at std 0.02 / sqrt(2 * 8) = 0.005.
INIT_CFG = dict(vocab_size=84, block_size=32, n_layer=8, n_head=4, d_model=128)
STD, SMALL_STD = 0.02, 0.02 / math.sqrt(2 * INIT_CFG["n_layer"])
# tolerance: a sample std over n >= 4096 normal draws is within 1/sqrt(2n) <= 1.1% of the true one
# (one sigma), so +-10% is a 9-sigma band for every seed, while the classic mistakes are off by a
# factor 4 (no scaling) or sqrt(2) (dividing by sqrt(n_layer)).
STD_BAND = 0.10


def _init_role(name: str) -> str | None:
    if name.endswith(("attn.out_proj.weight", "mlp.down.weight")):
        return "residual"
    if name.endswith(".weight") and ("_proj." in name or ".mlp." in name or name.endswith("_emb.weight")):
        return "normal"
    if name.endswith(".bias") and ("_proj." in name or ".mlp." in name):
        return "bias"
    return None                                        # norms: checked in checkpoint block


def test_residual_projection_init(seed):
    """Every Linear/Embedding weight ~ N(0, 0.02), biases 0, and the two projections that end a
    residual branch (attn.out_proj, mlp.down) ~ N(0, 0.02 / sqrt(2 * n_layer)), in every block."""
    with one_thread():
        torch.manual_seed(seed)
        mine = learner("model").GPT(learner_config(**INIT_CFG))
        for name, t in mine.state_dict().items():
            role = _init_role(str(name))
            if role is None:
                continue
            expect_type(t, torch.Tensor, what=f"GPT(n_layer=8).state_dict()[{name!r}]")
            values = to_numpy(t).astype(np.float64).ravel()
            if role == "bias":
                expect_close(values, np.zeros_like(values), what=f"GPT at init: {name} (biases start "
                             "at 0)", atol=0.0)           # exactly: nn.init.zeros_
                continue
            want = SMALL_STD if role == "residual" else STD
            std = float(values.std())
            if role == "residual" and is_close(std, STD, atol=0.0, rtol=STD_BAND):
                fail(f"GPT(n_layer=8) at init: {name} has std {std:.4f}, the plain 0.02: the "
                     f"residual-projection init scale is missing. attn.out_proj.weight and "
                     f"mlp.down.weight end a residual branch and start at std 0.02 / sqrt(2 * n_layer)"
                     f" = {SMALL_STD:.4f} (GPT-2; brief, section 5)")
            by_sqrt_l = STD / math.sqrt(INIT_CFG["n_layer"])
            if role == "residual" and is_close(std, by_sqrt_l, atol=0.0, rtol=STD_BAND):
                fail(f"GPT(n_layer=8) at init: {name} has std {std:.4f} = 0.02 / sqrt(n_layer): the "
                     "residual-projection init scale divides by sqrt(2 * n_layer) (two residual "
                     "branches per block), not sqrt(n_layer)")
            if role == "normal" and is_close(std, SMALL_STD, atol=0.0, rtol=STD_BAND):
                fail(f"GPT(n_layer=8) at init: {name} has std {std:.4f}: the residual-projection init "
                     "scale reached a weight that does not end a residual branch; only "
                     "attn.out_proj.weight and mlp.down.weight start smaller")
            expect_between(std, want * (1 - STD_BAND), want * (1 + STD_BAND),
                           what=f"GPT(n_layer=8) at init: the std of {name} ({values.size} values)",
                           why=f"expected normal(0, {want:.4f}) (brief, section 5)")
            # the mean of n draws has std want/sqrt(n) <= want/64: +-0.1·want is a 6-sigma band
            expect_between(float(values.mean()), -0.1 * want, 0.1 * want,
                           what=f"GPT(n_layer=8) at init: the mean of {name}",
                           why="weights start centred on 0")
