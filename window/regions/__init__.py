"""The window's regions, one module per screen area; each region takes its rectangle from
the layout (`place`), derives its hit rectangles from the scene (`update`), draws from the
read-only `window.scene.Scene` (`draw`), says when its picture changed (`key`,
`dirty_rects`) and answers hit tests (`hit`); an overlay view also names itself and says
its legend and caption (`base.Region`).

    palette     colours (one meaning each) and colour ramps
    caches      byte-bounded caches and the rendered-text cache
    base        the Region protocol and the z-order of the window's layers
    layout      the layout maths for a window size (pure)
    header      the header and the legend bar
    toolbar     the views and the most used actions as buttons, each with its key
    caption     the caption strip above the legend (I)
    columns     the grids' shared drawing, the input and the output columns
    network     the network view: the columns, the hidden grids and the connection lines
    portrait    the hovered neuron's portrait and the film strip
    maths_view  the maths on hover: a line's or a neuron's numbers and the optimizer's rule
    panel       the side panel: state, hyperparameters, its charts, the digit on screen
    charts      the panel's charts: loss and accuracy (earlier runs overlaid), per-class bars and chart
    overlays    the confusion matrix, the representation map, the help
    health_view  training health per layer over time (F4)
    runs_views  the run library's leaderboard and a watched sweep
    chart_view  the chart, large, with a verdict per earlier run (Z)
    settings_view  the settings form of a new run (F2)
    tour_view   the guided tour over the window (first launch, F3)

Regions import NumPy, pygame, the window's pure modules (`view_model`, `telemetry`,
`captions`, `experiment`, `tour`, ...), `runs.comparison` and each other (palette, caches,
base, layout); never the trainer, the training process or `visualization`.
"""
