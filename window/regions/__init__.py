"""The window's regions, one module per screen area; each region takes its rectangle from
the layout (`place`), derives its hit rectangles from the state (`update`), draws from a
read-only `base.Scene` (`draw`), says when its picture changed (`key`, `dirty_rects`) and
answers hit tests (`hit`).

    palette     colours (one meaning each) and colour ramps
    caches      byte-bounded caches and the rendered-text cache
    base        Scene and the Region protocol
    layout      the layout maths for a window size (pure)
    header      the header and the legend bar
    caption     the caption strip above the legend (I)
    network     input, hidden and output columns and the connection lines
    portrait    the hovered neuron's portrait and the film strip
    panel       the side panel and its charts (earlier runs overlaid)
    overlays    the confusion matrix, the representation map, the help
    runs_views  the run library's leaderboard and a watched sweep

Regions import NumPy, pygame, the pure modules (`view_model`, `telemetry`, `captions`, `comparison`) and
each other (palette, caches, base, layout); never the trainer, the training process or
`visualization`.
"""
