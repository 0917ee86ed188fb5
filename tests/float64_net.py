"""A network's forward pass in float64 with every layer written out: the reference the
explanation tests check the engine's float32 passes against."""
import numpy as np


def forward64(net, x):
    """(weights, biases, activations [x, h1, ..., logits], pre-activations [z1, ..., z_out]) of
    digit x under `net`, in float64; ReLU hidden layers, the last layer's logits unsquashed."""
    W = [w.astype(np.float64) for w in net.weights]
    b = [v.astype(np.float64) for v in net.biases]
    acts, zs = [x.astype(np.float64)], []
    for i in range(len(W)):
        z = acts[-1] @ W[i] + b[i]
        zs.append(z)
        acts.append(np.maximum(z, 0) if i < len(W) - 1 else z)
    return W, b, acts, zs
