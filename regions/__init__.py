"""The window's regions, one module per screen area; each region owns its rectangle, lays
itself out, draws from a read-only `base.Scene` and answers hit tests.

    palette   colours (one meaning each) and colour ramps
    caches    byte-bounded caches and the rendered-text cache
    base      Scene and the Region protocol
    layout    the layout maths for a window size (pure)
    header    the header and the legend bar
    network   input, hidden and output columns and the connection lines
    portrait  the hovered neuron's portrait and the film strip
    panel     the side panel and its charts
    overlays  the confusion matrix, the representation map, the help

Regions import NumPy, pygame, `view_model` (pure numbers) and each other (palette, caches,
base, layout); never the trainer, the training process or `visualization`.
"""
