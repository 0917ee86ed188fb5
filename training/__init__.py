"""Training: what a run is and how it is trained, without a window or a run library.

    config       the one frozen `Config` (the command line, model files, sweeps read it)
    loop         the one training loop and its observers (headless, window, sweep trials)
    trainer      `Trainer`: network, optimizer, data order; one batch at a time; evaluation
    optimizers   SGD, momentum and Adam updates; the learning-rate schedule
    augment      random shifts while training (--augment)
    split        the validation split (--val), --train-size and --test-size cut from a data set
    history      what a run remembers: evaluations, the loss curve, health records, weight snapshots
    health       training health measured every N batches (HealthMonitor) and its warnings
    steps        what the optimizer's steps change, as applied (StepWatch, in the window's process)
    update_rule  one parameter's optimizer rule with its numbers plugged in (tooltips)
    model_file   the model-file format: reading, validating, fitting a configuration
    files        output files written atomically, never clobbering what is there
    messages     the typed records the window and its training process exchange
    process      the window's training process (the loop in a child process)
    headless     a run in the terminal (--headless) and its metrics
    progress     the terminal's progress bars (an observer of the loop)

Imports NumPy, the top-level `neural_network` and `utils`, and `explain.backward` (health
and steps); never pygame, never `runs`.
Importing the package imports nothing.
"""
