"""Your micrograd: a scalar autograd engine (value.py), a tiny neural-net library (nn.py), and its
training loop (train.py). Read brief.md, fill in every NotImplementedError, then grade."""
