"""mnist_live: watch a NumPy multilayer perceptron learn MNIST, live, in a Pygame window.

The five modules of the original design are the faces of their subsystems:

    main            the command line (`mnist-live`, `python main.py`)
    neural_network  the MLP: forward, backward, the BLAS products of a training step
    data_loader     MNIST and Fashion-MNIST from OpenML, IDX files or the bundled sample
    visualization   the window: its loop, its regions, `run_app`
    utils           shared metrics and text tables

and the packages behind them hold the rest, one role each:

    engine/     the BLAS binding, a training step's threads, the optional compiled updates
    training/   the configuration, the one training loop and its observers, the trainer,
                optimizers, run history, model files, the window's training process
    runs/       the run library (SQLite), its recorder, the `runs` command, comparisons,
                hyperparameter sweeps and their trials
    window/     the window's state, keys, actions, events, the link to the training
                process, captions, settings, clips, and `regions/`, one per screen area
    explain/    relevance (LRP), neuron statistics, projections, dreams

Importing the package (or any package in it) imports nothing heavy: `mnist-live runs`
answers without loading NumPy.
"""
__version__ = "1.0.0"                  # the package version (pyproject.toml reads it from here)
