"""Checkpoint `model`: the whole GPT. With the reference's weights the logits and the loss match;
the head is tied to the token embedding; a fresh model's loss is about ln(vocab_size)."""
import math

import torch

from engine.gpt.model import GPT as RefGPT
from gpt_check_utils import allclose, configs, load_reference_weights, one_thread, randomize_
from grader.checks import expect, expect_close, expect_shape, expect_type, fail
from grader.seam import learner

# tolerance: float32 through 2 blocks and a 65-way head, logits of size ~1-5; correct code agrees
# to ~1e-5, so 1e-4 abs + 1e-4 rel. The loss is one number: 1e-5.
ATOL, RTOL = 1e-4, 1e-4

CFG = dict(vocab_size=65, block_size=24, n_layer=2, n_head=4, d_model=32)


def _reference(seed, **overrides):
    ref_cfg, my_cfg = configs(**{**CFG, **overrides})
    torch.manual_seed(seed)
    ref = randomize_(RefGPT(ref_cfg), seed, std=0.05).eval()
    return ref, my_cfg


def _learner_model(my_cfg, ref, what):
    mine = learner("model").GPT(my_cfg)
    load_reference_weights(mine, ref.state_dict(), what)
    return mine.eval()


def test_logits_match_reference(seed):
    with one_thread():
        ref, my_cfg = _reference(seed)
        g = torch.Generator().manual_seed(seed)
        B, T = 3, int(torch.randint(8, CFG["block_size"] + 1, (1,), generator=g))
        idx = torch.randint(0, CFG["vocab_size"], (B, T), generator=g)
        targets = torch.randint(0, CFG["vocab_size"], (B, T), generator=g)
        with torch.no_grad():
            want, want_loss = ref(idx, targets)
            no_pos = ref.lm_head(ref.norm_f(_run_blocks(ref, ref.tok_emb(idx))))
            no_final = ref.lm_head(_run_blocks(ref, ref.tok_emb(idx) + ref.pos_emb(torch.arange(T))))
        what = f"GPT(vocab 65, 2 layers, 4 heads, d_model 32) on idx {tuple(idx.shape)}"
        mine = _learner_model(my_cfg, ref, what)
        with torch.no_grad():
            out = mine(idx.clone(), targets.clone())
        if not isinstance(out, tuple) or len(out) != 2:
            fail(f"{what}: forward should return a pair (logits, loss), got {type(out).__name__}")
        got, loss = out
        expect_type(got, torch.Tensor, what=f"{what}: logits")
        expect_shape(got, (B, T, CFG["vocab_size"]), what=f"{what}: logits (B, T, vocab_size)")
        if not allclose(got, want, ATOL, RTOL):
            if allclose(got, no_pos, 1e-3, 1e-3):
                fail(f"{what}: looks like the position embedding is not added (pos_emb(arange(T)))")
            if allclose(got, no_final, 1e-3, 1e-3):
                fail(f"{what}: looks like the final norm (norm_f) is skipped before lm_head")
        expect_close(got, want, what=f"{what}: logits", atol=ATOL, rtol=RTOL)
        expect_type(loss, torch.Tensor, what=f"{what}: loss")
        expect_shape(loss, (), what=f"{what}: loss (a 0-d tensor)")
        expect_close(loss, want_loss, what=f"{what}: loss = cross-entropy of logits vs targets",
                     atol=1e-5, rtol=1e-5)


def _run_blocks(ref, x):
    for block in ref.blocks:
        x = block(x)
    return x


def test_no_targets_no_loss(seed):
    with one_thread():
        ref, my_cfg = _reference(seed)
        idx = torch.randint(0, CFG["vocab_size"], (2, 5), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want, _ = ref(idx)
        what = "GPT(...)(idx) without targets"
        mine = _learner_model(my_cfg, ref, what)
        with torch.no_grad():
            got, loss = mine(idx)
        expect(loss is None, f"{what}: the loss should be None when no targets are given, got {loss!r}")
        expect_close(got, want, what=f"{what}: logits", atol=ATOL, rtol=RTOL)


def test_weight_tying(seed):
    with one_thread():
        ref, my_cfg = _reference(seed)
        want_n = sum(p.numel() for p in ref.parameters())
        V = CFG["vocab_size"]
        mine = learner("model").GPT(my_cfg)
        head, emb = getattr(mine, "lm_head", None), getattr(mine, "tok_emb", None)
        if head is None or emb is None:
            fail("GPT needs the attributes tok_emb (nn.Embedding) and lm_head (nn.Linear, no bias); "
                 "see the layout in brief.md, section 5")
        if head.weight is not emb.weight:
            fail("GPT: lm_head.weight is not tied to tok_emb.weight (weight tying): they must be the "
                 "same Parameter object, e.g. self.lm_head.weight = self.tok_emb.weight")
        got_n = sum(p.numel() for p in mine.parameters())
        if got_n != want_n:
            hint = " (an lm_head bias?)" if got_n - want_n == V else ""
            fail(f"GPT with {CFG}: {got_n} parameters, expected {want_n}{hint}")


def test_loss_at_init_is_ln_vocab(seed):
    """A model that knows nothing spreads its bets evenly: loss ~ ln(V). A large init does not."""
    with one_thread():
        V = 84
        _, my_cfg = configs(**{**CFG, "vocab_size": V, "d_model": 64})
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, V, (4, 24), generator=g)
        targets = torch.randint(0, V, (4, 24), generator=g)
        torch.manual_seed(seed)
        mine = learner("model").GPT(my_cfg).eval()
        with torch.no_grad():
            _, loss = mine(idx, targets)
        expect_type(loss, torch.Tensor, what="GPT loss at init")
        want = math.log(V)
        # tolerance: with std-0.02 weights the logits have std ~0.02*sqrt(C) ~ 0.16, which raises the
        # loss above ln V by about var/2 ~ 0.01; 0.1 allows for that and for sampling noise, while a
        # default nn.Embedding init (std 1) tied to the head gives a loss of 10 or more.
        if not abs(float(loss) - want) <= 0.1:
            fail(f"loss of a freshly initialised GPT is {float(loss):.3f}, expected about "
                 f"ln({V}) = {want:.3f} (+-0.1): initialise Linear and Embedding weights with "
                 "normal(0, 0.02) and biases with 0 (brief, section 5); the tied embedding's default "
                 "std of 1 makes the first logits huge")
