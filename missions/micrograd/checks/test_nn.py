"""Checkpoint nn: Neuron, Layer, MLP have the right parameters, order and outputs."""
import random

from grader.checks import as_float, expect_between, expect_close, expect_equal, expect_type, fail
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
    for k, p in enumerate(params):
        expect_type(p, Value, what=f"MLP.parameters()[{k}]")
    expect_equal(len({id(p) for p in params}), want,
                 what="distinct Values in MLP.parameters() (the same Value listed twice?)")


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
        expect_close(as_float(out.data, what="MLP(3, [5, 4, 1])(x).data"), w, what=f"MLP(3, [5, 4, 1]) output for x={[round(v, 3) for v in x]} "
                     "(weights loaded in parameters() order; hidden layers ReLU, last layer linear)",
                     atol=TOL, rtol=TOL)


def test_neuron_init_and_nonlin(seed):
    nn = learner("nn")
    random.seed(seed)
    n = nn.Neuron(50)
    params = n.parameters()
    expect_type(params, list, what="Neuron(50).parameters()")
    expect_equal(len(params), 51, what="len(Neuron(50).parameters()) (50 weights + the bias)")
    ws = [as_float(p.data, what=f"Neuron(50).parameters()[{k}].data") for k, p in enumerate(params)]
    for k, w in enumerate(ws[:-1]):
        expect_between(w, -1.0, 1.0, what=f"Neuron(50) weight #{k}", why="weights are drawn uniformly from [-1, 1]")
    expect_between(len(set(ws[:-1])), 41, None, what="distinct weights among Neuron(50)'s 50",
                   why="each weight is its own random.uniform(-1, 1) draw")
    expect_between(min(ws[:-1]), None, -0.5, what="the smallest of Neuron(50)'s 50 weights",
                   why="weights are drawn uniformly from [-1, 1], negative ones too")
    expect_equal(ws[-1], 0.0, what="Neuron(50) bias (it starts at 0)")
    Value = learner("value").Value
    lin = nn.Neuron(2, nonlin=False)
    _load(lin, [1.0, 1.0, 0.0])
    expect_close(as_float(lin([Value(-1.0), Value(-2.0)]).data, what="Neuron(2, nonlin=False)(x).data"), -3.0,
                 what="Neuron(2, nonlin=False) with weights [1, 1], bias 0, at x=[-1, -2] (no ReLU)", atol=TOL)


def test_zero_grad():
    nn = learner("nn")
    Value = learner("value").Value
    model = nn.MLP(2, [3, 1])
    model([Value(1.0), Value(-1.0)]).backward()
    model.zero_grad()
    grads = [as_float(p.grad, what=f"parameters()[{k}].grad after zero_grad()")
             for k, p in enumerate(model.parameters())]
    expect_equal(grads, [0.0] * len(grads), what="every parameter's grad after MLP(2, [3, 1]).zero_grad()")
