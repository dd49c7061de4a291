"""Checkpoint `pretokenize`: GPT-2 pre-tokenization and splitting around special tokens."""
from _bpe_util import EOT, corpus, same, sample_texts, unicode_property
from engine.bpe.pretokenize import GPT2_RE, split_special as ref_split
from grader.checks import expect_equal, expect_type, fail
from grader.seam import learner


def _compare_pieces(text, got, want):
    what = f"pretokenize({text[:60]!r}{'...' if len(text) > 60 else ''})"
    expect_type(got, list, what=what)
    for k, piece in enumerate(got):
        expect_type(piece, str, what=f"{what}[{k}]")
    if not same(got, want):
        if not same("".join(got), text):
            fail(f"{what}: the pieces do not join back to the text (some characters were lost or added); "
                 "use findall with GPT2_RE, which covers every character")
        k = next(i for i, (a, b) in enumerate(zip(got + [None], want + [None])) if not same(a, b))
        fail(f"{what}: piece #{k} is {got[k] if k < len(got) else None!r}, expected "
             f"{want[k] if k < len(want) else None!r} (expected pieces around it: {want[max(0, k - 2):k + 3]}); "
             "use the GPT-2 pattern as given")
    expect_equal(got, want, what=what)


def test_pretokenize_matches_gpt2(rng):
    pretokenize = learner("pretokenize").pretokenize
    for text in sample_texts(rng):
        _compare_pieces(text, pretokenize(text), GPT2_RE.findall(text))


@unicode_property(max_size=60, examples=150)     # hypothesis, fixed derandomized profile
def test_pretokenize_any_unicode(text):
    _compare_pieces(text, learner("pretokenize").pretokenize(text), GPT2_RE.findall(text))


def _unescaped_split(text, specials):
    import regex
    pattern = "(" + "|".join(sorted(specials, key=len, reverse=True)) + ")"
    try:
        return [p for p in regex.split(pattern, text) if p]
    except regex.error:
        return None


def test_split_special(rng):
    split = learner("pretokenize").split_special
    specials = [EOT, "<|pad|>"]
    parts = []
    for _ in range(int(rng.integers(4, 9))):                    # text and specials, some adjacent
        parts.append(str(rng.choice(specials)) if rng.random() < 0.4 else corpus(rng, int(rng.integers(1, 40))))
    text = "".join(parts)
    cases = [(text, specials), ("no specials here", specials), ("", specials), ("plain", []),
             (EOT, specials), (EOT + EOT + "x" + EOT, specials), ("a<|endoftext", specials)]
    for t, sp in cases:
        want = ref_split(t, sp)
        got = split(t, list(sp))
        what = f"split_special({t[:70]!r}, {sp})"
        expect_type(got, list, what=what)
        for k, part in enumerate(got):
            expect_type(part, str, what=f"{what}[{k}]")
        if "" in got:   # raw-ok: got is a plain list of exact str (checked just above)
            fail(f"{what}: returned empty strings ({got}); drop them")
        if not same(got, want) and sp and same(got, _unescaped_split(t, sp)):
            fail(f"{what}: got {got}: the specials were used as regex syntax ('|' means 'or'); special "
                 "tokens are literal text: escape them with regex.escape before joining them")
        expect_equal(got, want, what=what)


def test_split_special_longest_first_and_escaped():
    split = learner("pretokenize").split_special
    double = EOT + EOT
    text = "a" + double + "b" + EOT + "c"
    got = split(text, [EOT, double])                             # the shorter one listed first
    want = ["a", double, "b", EOT, "c"]
    if same(got, ["a", EOT, EOT, "b", EOT, "c"]):
        fail(f"split_special({text!r}, [{EOT!r}, {double!r}]): the shorter special won; when one special "
             "is a prefix of another, the longer one must win: try the specials longest first")
    expect_equal(got, want, what=f"split_special({text!r}, [{EOT!r}, {double!r}])")
    text = "x[MASK]y<a.b>z"
    got = split(text, ["[MASK]", "<a.b>"])
    want = ["x", "[MASK]", "y", "<a.b>", "z"]
    expect_equal(got, want, what=f"split_special({text!r}, ['[MASK]', '<a.b>']) (special tokens are literal "
                 "text: escape them (regex.escape) before building a pattern)")
