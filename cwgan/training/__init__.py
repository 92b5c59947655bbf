"""A training run: `TrainConfig`, preparing and fitting a run, its callbacks, the XLA choice,
distribution strategies, and the checkpoint directory."""
