"""Your numpy MLP for MNIST. Write the files in this order (brief.md walks through each):

    linear.py    Linear.forward / Linear.backward           (section 1)
    relu.py      ReLU.forward / ReLU.backward               (section 2)
    loss.py      softmax, softmax_cross_entropy             (section 3)
    gradcheck.py numerical_gradient, relative_error, grad_check   (section 4)
    mlp.py       MLP.forward / MLP.backward                 (section 5)
    sgd.py       SGD.step                                   (section 6)
    train.py     minibatches, train_step                    (section 7)

numpy only: importing torch, jax or tensorflow here fails the checks.
"""
