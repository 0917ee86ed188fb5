"""The window's parts behind `visualization.py` (which owns the loop and the regions).

    state         what the person at the window has chosen (digit, filters, overlays)
    keys          the key table: one row per control (dispatch, help, README)
    actions       what each key and click does to the state
    events        events routed to the keys and the regions
    trainer_link  the window's side of the training process
    telemetry     the training process as the window knows it (curves, evaluations)
    view_model    the view of the digit, predictions, the window's test-set pass, the map
    display       the weights on screen and what the window computes from them
    learning      watching it learn: the backward and Δw views, step mode, which step is shown
    scene         the typed, read-only Scene a frame draws from
    side_views    a dream, the map's easing, grid orders, which evaluation the panel shows
    captions      the caption of the view on screen, the ideas the help explains
    headline      the header's accuracy: which evaluation leads, what stands beside it
    tour          the guided tour's steps and keys (first launch, F3)
    experiment    the settings form of a new run (F2), checked by the command line's parser
    effects       what the frame loop does with the actions' effects
    settings      the view settings remembered between launches
    clips         screenshots and animated GIF clips of the window
    session       opening the display, scripted endings (--frames, --screenshot), --metrics
    frame_times   frame times, the frame-rate line
    drawn_digit   drawn digits made to look like MNIST
    fetch         the full data set downloaded and parsed in the background
    memory        the window process's malloc heap
    regions/      one module per screen area

pygame is imported by `keys`, `events`, `effects`, `clips`, `session` and `regions` only;
the rest is pure Python and NumPy, tested without a display. Importing the package imports nothing.
"""
