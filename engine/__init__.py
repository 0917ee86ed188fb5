"""The compute engine under the MLP: what makes a training step fast.

What a step computes is in `neural_network.py` and `training/optimizers.py`; this package
holds only how fast it runs.

    blas         C = alpha*A@B + beta*C through the BLAS NumPy ships; its thread count
    threads      a step's fixed blocks on its own threads, BLAS single-threaded meanwhile
    compiled     the optional compiled optimizer updates (numba, the `fast` extra)

Imports the standard library and NumPy (numba, optionally, in a background thread); nothing
of the project above it. Importing the package imports nothing.
"""
