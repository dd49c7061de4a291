"""Reference for mission micrograd: a scalar autograd engine and a tiny neural-net library."""
