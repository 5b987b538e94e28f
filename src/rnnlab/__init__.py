"""rnnlab: recurrent neural networks from scratch in NumPy, with explicit, tested backward."""

__version__ = "0.1.0"
