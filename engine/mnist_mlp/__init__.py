"""A multilayer perceptron for MNIST in plain numpy: every gradient written by hand.

    linear.py    Param and Linear: y = x W + b, and its three gradients
    relu.py      ReLU: max(0, x), and the mask that routes its gradient
    loss.py      softmax and the fused softmax cross-entropy (stable, mean over the batch)
    mlp.py       Linear -> ReLU -> ... -> Linear, forward and backward through the stack
    sgd.py       SGD with momentum and weight decay (the torch.optim.SGD update)
    gradcheck.py central finite differences: the test every hand-written gradient must pass
    train.py     minibatches, one training step, the loop, and main() for `llm-lab train`
"""
