"""`tf.distribute` strategies for training on several devices or machines.

`make_strategy("mirrored")` trains on every GPU of one machine (or every logical CPU
device when there is no GPU); `make_strategy("multi_worker")` trains on several machines
described by the `TF_CONFIG` environment variable; `make_strategy("none")` is one device.
Build and compile the model inside `strategy.scope()`:

```python
strategy = cwgan.make_strategy("mirrored")
with strategy.scope():
    model = cwgan.build_model(cwgan.TrainConfig(batch_size=256))
model.fit(cwgan.make_dataset(images, labels, batch_size=256, n_critic=model.n_critic))
```

`batch_size` is the global batch: each of the R replicas takes `batch_size / R` images
per critic batch. docs/distributed.md says what scales and what to watch.
"""

import logging
import os

import tensorflow as tf

from cwgan.utils.checks import check_int

logger = logging.getLogger("cwgan")

STRATEGIES = ("none", "mirrored", "multi_worker")


def make_strategy(name="none", devices=None):
    """Returns the `tf.distribute.Strategy` called `name`.

    Create it first thing in the program: "multi_worker" sets up TensorFlow's collective
    ops, which must happen before TensorFlow runs any op.

    Example:

    ```python
    strategy = cwgan.make_strategy("mirrored")
    strategy.num_replicas_in_sync   # 4 on a machine with 4 GPUs
    ```

    Args:
        name: one of `STRATEGIES`. "none": TensorFlow's default strategy (the one in
            effect outside any `scope()`): one device, nothing replicated. "mirrored":
            `tf.distribute.MirroredStrategy`, one replica per device of this machine,
            gradients summed over replicas every update. "multi_worker":
            `tf.distribute.MultiWorkerMirroredStrategy`, the same over the machines
            listed in `TF_CONFIG` (every worker runs the same program with its own
            `TF_CONFIG` task). Defaults to "none".
        devices: for "mirrored", the devices to replicate on, e.g. `["/gpu:0", "/gpu:1"]`.
            Defaults to every GPU, or when there is none, every logical CPU device (see
            `tf.config.set_logical_device_configuration`).

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Invalid value for argument `strategy`. Received: strategy={name!r}. "
                         f"Expected one of {STRATEGIES}.")
    if devices is not None and name != "mirrored":
        raise ValueError(f"Invalid value for argument `devices`. Received: devices={devices!r} "
                         f"with strategy={name!r}. Expected None: only 'mirrored' takes "
                         "devices.")
    if name == "mirrored":
        if devices is None:
            devices = [d.name for d in (tf.config.list_logical_devices("GPU")
                                        or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            logger.warning("strategy='multi_worker' without TF_CONFIG in the environment: "
                           "training on this machine alone.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def replica_batch_size(batch_size, strategy):
    """Images per critic batch on each replica: `batch_size` (global) / replicas.

    Raises:
        ValueError: if `batch_size` is not a multiple of `strategy.num_replicas_in_sync`
            (every replica must get the same share, and the model draws the noise of
            the global batch in equal slices).
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"Invalid value for argument `batch_size`. Received: batch_size={batch_size} "
            f"with {replicas} replicas. Expected a multiple of {replicas}: batch_size is "
            "the global batch, split evenly over the replicas.")
    return batch_size // replicas
