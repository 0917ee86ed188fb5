"""Explanations of a network's predictions, in pure NumPy.

The window draws what these modules compute; the tests check them against brute force and
independent libraries.

    lrp         relevance: layer-wise relevance propagation from one score down to the pixels
    backward    the backward pass of one digit: the error at the output, each neuron's error
                signal, the weight gradient a * delta and its largest edges
    edges       choosing the k largest edges of a layer pair and the share they carry
    neurons     what each hidden neuron does: its preferred class, its test-set statistics
    projection  a layer's activations in two dimensions (aligned PCA), the balanced subset
    dreams      the input gradient ascent dreams for a class or a neuron

Imports NumPy and `neural_network` only; importing the package imports nothing.
"""
