"""A fully connected layer, y = x W + b, with its backward pass written out.

Shapes, for a batch of N inputs with n_in features mapped to n_out features:

    x  (N, n_in)     W  (n_in, n_out)     b  (n_out,)     y  (N, n_out)

Given dy = dL/dy (N, n_out), the chain rule gives three gradients:

    dW = x^T dy        (n_in, n_out)   each weight sees every example; the matmul sums over N
    db = sum_n dy[n]   (n_out,)        b is broadcast over the batch, so its gradient is summed
    dx = dy W^T        (N, n_in)       handed to the layer below

Not handled: reusing one layer twice in a graph (backward assigns .grad, it does not add), bias-free
layers, dtypes other than the float type the parameters were created with.
"""
from __future__ import annotations

import numpy as np


class Param:
    """A trainable array and the gradient of the loss with respect to it (same shape)."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self) -> str:
        return f"Param(shape={self.data.shape}, dtype={self.data.dtype})"


class Linear:
    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator | None = None,
                 dtype=np.float64):
        rng = rng if rng is not None else np.random.default_rng(0)
        # He initialisation: with ReLU after the layer, std sqrt(2 / n_in) keeps the size of the
        # activations roughly constant from layer to layer. Biases start at zero.
        std = np.sqrt(2.0 / n_in)
        self.W = Param(rng.normal(0.0, std, size=(n_in, n_out)).astype(dtype))
        self.b = Param(np.zeros(n_out, dtype=dtype))
        self.x: np.ndarray | None = None  # the input, kept by forward for backward

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = x W + b for x of shape (N, n_in); remembers x."""
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Set W.grad and b.grad from dy (N, n_out) and return dx (N, n_in)."""
        self.W.grad = self.x.T @ dy
        self.b.grad = dy.sum(axis=0)
        return dy @ self.W.data.T

    def parameters(self) -> list[Param]:
        return [self.W, self.b]

    def __repr__(self) -> str:
        n_in, n_out = self.W.data.shape
        return f"Linear({n_in} -> {n_out})"
