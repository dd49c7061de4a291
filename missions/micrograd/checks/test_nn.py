"""Checkpoint nn: Neuron, Layer, MLP have the right parameters, order and outputs."""
import random

from grader.checks import expect, expect_close, expect_type, fail
from engine.micrograd import nn as ref_nn
from engine.micrograd import value as ref_value
from grader.seam import learner

TOL = 1e-9  # same weights, same float64 ops: only summation order may differ


def test_parameter_count():
    want = len(ref_nn.MLP(2, [16, 16, 1]).parameters())   # 337
    nn = learner("nn")
    Value = learner("value").Value
    model = nn.MLP(2, [16, 16, 1])
    params = model.parameters()
    expect_type(params, list, what="MLP.parameters()")
    if len(params) != want:
        fail(f"MLP(2, [16, 16, 1]).parameters() has {len(params)} Values, expected 337 = (2+1)·16 + "
             "(16+1)·16 + (16+1)·1: every neuron has one weight per input plus a bias")
    expect(all(type(p) is Value for p in params), "MLP.parameters() must be a list of Value")
    expect(len({id(p) for p in params}) == want, "MLP.parameters() lists the same Value twice")


def _load(model, weights):
    for p, w in zip(model.parameters(), weights):
        p.data = w


def test_forward_matches_reference(rng):
    sizes = [3, [5, 4, 1]]
    ref = ref_nn.MLP(*sizes)
    weights = [float(w) for w in rng.uniform(-1, 1, size=len(ref.parameters()))]
    _load(ref, weights)
    xs = [[float(v) for v in rng.uniform(-2, 2, size=3)] for _ in range(5)]
    want = [ref([ref_value.Value(v) for v in x]).data for x in xs]

    nn = learner("nn")
    Value = learner("value").Value
    model = nn.MLP(*sizes)
    _load(model, weights)
    for x, w in zip(xs, want):
        out = model([Value(v) for v in x])
        expect_type(out, Value, what="MLP(3, [5, 4, 1])(x) with one output neuron")
        expect_close(out.data, w, what=f"MLP(3, [5, 4, 1]) output for x={[round(v, 3) for v in x]} "
                     "(weights loaded in parameters() order; hidden layers ReLU, last layer linear)",
                     atol=TOL, rtol=TOL)


def test_neuron_init_and_nonlin(seed):
    nn = learner("nn")
    random.seed(seed)
    n = nn.Neuron(50)
    ws = [p.data for p in n.parameters()]
    expect(len(ws) == 51, f"Neuron(50) must have 51 parameters (50 weights + bias), got {len(ws)}")
    expect(all(-1 <= w <= 1 for w in ws[:-1]) and len(set(ws[:-1])) > 40 and min(ws[:-1]) < -0.5,
           "Neuron weights must be drawn uniformly from [-1, 1] (negative ones too)")
    expect(ws[-1] == 0.0, f"Neuron bias must start at 0, got {ws[-1]}")
    Value = learner("value").Value
    lin = nn.Neuron(2, nonlin=False)
    _load(lin, [1.0, 1.0, 0.0])
    expect_close(lin([Value(-1.0), Value(-2.0)]).data, -3.0,
                 what="Neuron(2, nonlin=False) with weights [1, 1], bias 0, at x=[-1, -2] (no ReLU)", atol=TOL)


def test_zero_grad():
    nn = learner("nn")
    Value = learner("value").Value
    model = nn.MLP(2, [3, 1])
    model([Value(1.0), Value(-1.0)]).backward()
    model.zero_grad()
    grads = [p.grad for p in model.parameters()]
    expect(all(g == 0.0 for g in grads), f"after zero_grad() every grad must be 0, got {grads}")
