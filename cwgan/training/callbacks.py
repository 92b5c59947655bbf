"""Keras callbacks for training a `ConditionalWGAN`: sample grids, checkpoints, a guard
against non-finite losses, a clean stop on SIGINT / SIGTERM, time limit, learning-rate
decay, quality evaluation and a JSONL log of every epoch."""

import json
import logging
import math
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from cwgan.evaluation.judge import evaluate_generator
from cwgan.sampling.grids import save_grid
from cwgan.training.checkpoints import (GENERATOR_CONFIG_FILE, read_json, save_checkpoint,
                                        save_generator)
from cwgan.utils.checks import check_fraction, check_int, check_positive_float, check_seed

logger = logging.getLogger("cwgan")


class SampleGrid(keras.callbacks.Callback):
    """Saves a PNG grid of samples, one row per trained class, every N epochs.

    The noise is drawn once (from `seed`), column j uses the same noise vector in every
    row and in every grid, so grids compare across classes and across epochs. Files are
    `grid_0001.png`, `grid_0002.png`, ... (the 1-based epoch), written atomically.

    Args:
        directory: where the PNGs go; created if missing.
        n_per_class: images per row. Defaults to 10.
        every_n_epochs: draw after every N-th epoch (and the last). Defaults to 1.
        seed: seed of the fixed noise. Defaults to 0.
        class_names: labels shown on the rows, indexed by class. Defaults to the model's
            (`ConditionalWGAN.class_names`: the digits, or the data's class names).
        tensorboard_dir: if given, each grid is also logged there as a TensorBoard image
            ("samples"), at the generator iteration it was drawn. Defaults to None.

    Attributes:
        last_path: the newest PNG written, or None.
        row_labels: the rows' labels (class names of the trained classes), set when
            training begins.
    """

    def __init__(self, directory, n_per_class=10, every_n_epochs=1, seed=0,
                 class_names=None, tensorboard_dir=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.tensorboard_dir = tensorboard_dir and os.fspath(tensorboard_dir)
        self._writer = None
        self.n_per_class = check_int("n_per_class", n_per_class, minimum=1)
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, minimum=1)
        self.seed = check_seed("seed", seed)
        self.class_names = class_names
        self.last_path = None
        self.row_labels = None

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        classes = np.asarray(self.model.classes, np.int32)
        noise = np.random.default_rng(self.seed).standard_normal(
            (self.n_per_class, self.model.latent_dim)).astype(np.float32)
        self._noise = np.tile(noise, (len(classes), 1))
        self._labels = np.repeat(classes, self.n_per_class)
        names = self.class_names or self.model.class_names
        self.row_labels = [names[c] for c in classes]

    def on_epoch_end(self, epoch, logs=None):
        if not _due(self, epoch, self.every_n_epochs):
            return
        with self.model.averaged_generator() as generator:  # what is saved
            images = generator([self._noise, self._labels], training=False)
        images = (np.asarray(images) + 1.0) / 2.0
        images = images.reshape(len(self.row_labels), self.n_per_class, *images.shape[1:])
        iterations = int(self.model.generator_iterations.numpy())
        self.last_path = os.path.join(self.directory, f"grid_{epoch + 1:04d}.png")
        save_grid(self.last_path, images, self.row_labels,
                  title=f"epoch {epoch + 1}, generator iteration {iterations}")
        if self.tensorboard_dir:
            self._log_image(iterations)

    def _log_image(self, step):
        """Logs the PNG just written (labels and all) as a TensorBoard image."""
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.tensorboard_dir)
        with open(self.last_path, "rb") as f:
            image = tf.image.decode_png(f.read(), channels=3)
        with self._writer.as_default():
            tf.summary.image("samples", image[None], step=step)
        self._writer.flush()


class WGANCheckpoint(keras.callbacks.Callback):
    """Saves the generator (for sampling) and the full model (for resuming).

    Saves after every N-th epoch, when training stops early (e.g. `TimeLimit`), after
    the last epoch, and every `every_n_steps` generator iterations if given, keeping the
    newest `keep` full models. See `cwgan.training.checkpoints` for the files. A model with
    non-finite weights is never saved (`FloatingPointError`), so the last good
    checkpoint survives a divergence.

    Args:
        directory: the checkpoint directory; created if missing.
        every_n_epochs: save after every N-th epoch. Defaults to 1.
        every_n_steps: also save every N generator iterations. Defaults to None (epoch
            ends only).
        keep: how many full models (`resume/ckpt-*.keras`) to keep. Defaults to 3.
        dataset: recorded in `generator.json`. Defaults to "mnist".
    """

    def __init__(self, directory, every_n_epochs=1, every_n_steps=None, keep=3,
                 dataset="mnist"):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, minimum=1)
        self.every_n_steps = (None if every_n_steps is None
                              else check_int("every_n_steps", every_n_steps, minimum=1))
        self.keep = check_int("keep", keep, minimum=1)
        self.dataset = dataset
        self._epoch = 0
        self._last_iteration = None

    def on_train_begin(self, logs=None):
        self._last_iteration = int(self.model.generator_iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps is None:
            return
        # A step need not advance the generator (`n_critic_warmup`): save once per count.
        # The epoch's last step (or one after which training stops) is left to
        # on_epoch_end, which saves it anyway.
        iteration = int(self.model.generator_iterations.numpy())
        if (iteration % self.every_n_steps == 0 and iteration != self._last_iteration
                and batch + 1 != self.params.get("steps") and not self.model.stop_training):
            self._save(self._epoch)
        self._last_iteration = iteration

    def on_epoch_end(self, epoch, logs=None):
        if _due(self, epoch, self.every_n_epochs):
            self._save(epoch + 1)

    def _save(self, epochs_done):
        save_checkpoint(self.model, self.directory, epochs_done, self.dataset, self.keep)


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, before anything is saved.

    Unlike `keras.callbacks.TerminateOnNaN` (which watches a "loss" key this model does
    not have, and lets the epoch end so that checkpoint callbacks would save the broken
    model), it raises `FloatingPointError` from the batch end: Keras then runs no
    `on_epoch_end`, so the last good checkpoint and grid stay the newest. Put it first
    in the callback list.
    """

    KEYS = ("critic_loss", "generator_loss")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for key in self.KEYS:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise FloatingPointError(
                    f"Training diverged: {key}={float(value)} at generator iteration "
                    f"{int(self.model.generator_iterations.numpy())} (epoch "
                    f"{self._epoch + 1}). Stopped before saving anything, so the last good "
                    "checkpoint and grid are kept. A lower learning rate usually helps.")


class TimeLimit(keras.callbacks.Callback):
    """Stops training cleanly once `max_minutes` of wall time have passed.

    Keras finishes the epoch in progress early and calls `on_epoch_end`, so grids and
    checkpoints are written as at any epoch end. `clock` returns seconds (monotonic;
    tests pass a fake one).
    """

    def __init__(self, max_minutes, clock=time.monotonic):
        super().__init__()
        self.max_seconds = 60.0 * check_positive_float("max_minutes", max_minutes)
        self.clock = clock
        self.stopped = False
        self._start = None

    def on_train_begin(self, logs=None):
        if self._start is None:  # a resumed partial epoch is a second fit(); one clock
            self._start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        out_of_time = self.clock() - self._start >= self.max_seconds
        strategy = self.model.distribute_strategy
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Every worker must stop after the same step, or the others wait forever:
            # stop when any worker's time is up.
            out_of_time = float(strategy.reduce(
                "MEAN", tf.constant(float(out_of_time)), axis=None)) > 0
        if out_of_time:
            if not self.stopped:
                logger.info("Time limit of %.1f minutes reached; stopping.",
                            self.max_seconds / 60)
            self.stopped = True
            self.model.stop_training = True


class FitToTime(TimeLimit):
    """A `TimeLimit` that also ends the schedule where the time ends, from the step time
    measured at run time.

    A machine twice as slow makes half the steps in the same minutes; a schedule fixed in
    steps would then be cut off with its learning rate still high, and a fast machine
    would idle. So once `measure_epochs` epochs past this process's first (which
    includes compiling) have run, the wall time per step over the last `window_epochs`
    of them, grids and checkpoints included, says how many steps fit in the rest of
    `max_minutes` (less 3% for the last epoch's files). If that is fewer than `steps`,
    it becomes the run's end, rounded down to whole epochs: the `decay` goes on from the
    step's rate to 0 there (`LinearDecay.end_at`), `on_fit(steps, seconds_per_step,
    start)` is called (the training run records it, so a resumed run keeps it), and training
    stops there. Every later epoch estimates again and moves the end either way: earlier
    when epochs turn slower (an evaluation every N steps, a busy machine), later again
    when a slow spell has passed, so that the run uses its minutes and ends within the
    last epoch of its limit.

    Args:
        max_minutes: the time limit (it stops training there, as `TimeLimit` does).
        steps: the schedule's end if time allows.
        steps_per_epoch: the epoch length; the end is a multiple of it.
        decay: the `LinearDecay` to end at the same step, or None.
        on_fit: called with `(steps, seconds_per_step, start)` when the end moves
            (`start`: the decay's new `(step, rate)` start, or None), or None.
        measure_epochs: epochs timed, after the first, before the first estimate.
            Defaults to 2.
        window_epochs: the latest epochs the step time is measured over: long enough to
            average an evaluation every few epochs, short enough to forget a slow spell.
            Defaults to 10.
        clock: returns seconds (monotonic). Defaults to `time.monotonic`.
    """

    MARGIN = 0.97

    def __init__(self, max_minutes, steps, steps_per_epoch, decay=None, on_fit=None,
                 measure_epochs=2, window_epochs=10, clock=time.monotonic):
        super().__init__(max_minutes, clock)
        self.steps = check_int("steps", steps, minimum=1)
        self.steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        self.measure_epochs = check_int("measure_epochs", measure_epochs, minimum=1)
        self.window_epochs = check_int("window_epochs", window_epochs, minimum=1)
        self.decay, self.on_fit = decay, on_fit
        self.fitted = None  # the run's end once decided
        self._marks = []  # (time, step) at each epoch end of this process

    def on_epoch_end(self, epoch, logs=None):
        now, step = self.clock(), int(self.model.train_steps.numpy())
        self._marks.append((now, step))
        timed = len(self._marks) - 1  # the first epoch: compiling, not training speed
        if timed >= self.measure_epochs:
            since, since_step = self._marks[-1 - min(timed, self.window_epochs)]
            per_step = (now - since) / max(step - since_step, 1)
            left = self.max_seconds * self.MARGIN - (now - self._start)
            fit = (step + int(max(left, 0.0) / per_step)) // self.steps_per_epoch
            fit = min(max(fit * self.steps_per_epoch, step), self.steps)
            if fit != (self.steps if self.fitted is None else self.fitted):
                log = logger.info if self.fitted is None else logger.debug
                log("At %.4f s a step, %.1f minutes fit %d steps, not %d: the schedule "
                    "ends there (the learning rate reaches 0 at step %d).", per_step,
                    self.max_seconds / 60, fit, self.steps, fit)
                self.fitted = fit
                start = None
                if self.decay is not None:
                    start = self.decay.end_at(step, fit)
                if self.on_fit is not None:
                    self.on_fit(fit, per_step, start)
            elif self.fitted is None:
                self.fitted = self.steps
        if self.fitted is not None and step >= self.fitted:
            self.model.stop_training = True


class LinearDecay(keras.callbacks.Callback):
    """Both optimizers' learning rate falls linearly, from `learning_rate` to 0 at `steps`,
    over the run's last `fraction` (all of it by default; before that it stays constant).

    Set before every training step from the model's step count (`train_steps`, saved in
    checkpoints) alone, so a resumed run, or one given more steps, gets the rate an
    uninterrupted run of that length would have, whatever the data's size. (Keras'
    `LearningRateScheduler` sets only `model.optimizer`, here the generator's, and once
    per epoch.) The epoch's last rate goes into its logs as `learning_rate`.

    A run whose end moves (`FitToTime`) goes on from the rate it has when the end moves,
    along a line to 0 at the new end (`end_at`): the rate never jumps.

    Args:
        learning_rate: the rate at step 0.
        steps: the step at which the rate reaches 0 (the run's length).
        critic_learning_rate: the critic's rate at step 0, if not `learning_rate` (two
            time-scale rates). Defaults to `learning_rate`.
        start: `(step, rate)` the line starts from, as `end_at` left it. Defaults to
            `(0, learning_rate)`.
        fraction: the share of `steps` at the end over which the rate falls, in (0, 1].
            Defaults to 1 (from the first step).
    """

    def __init__(self, learning_rate, steps, critic_learning_rate=None, start=None,
                 fraction=1.0):
        super().__init__()
        self.learning_rate = check_positive_float("learning_rate", learning_rate)
        self.critic_learning_rate = check_positive_float(
            "critic_learning_rate", critic_learning_rate or learning_rate)
        self.steps = check_int("steps", steps, minimum=1)
        self.fraction = check_fraction("fraction", fraction)
        start = (0, self.learning_rate) if start is None else start
        self.start = (check_int("start step", start[0], minimum=0), float(start[1]))
        self._step = None
        self._rate = None

    def rate(self, step):
        """The (generator's) learning rate of step `step` (0-based)."""
        from_step, from_rate = self.start
        if step >= self.steps:
            return 0.0
        falls_from = max(from_step, self.steps - round(self.fraction * self.steps))
        return from_rate * min(1.0, (self.steps - step) / (self.steps - falls_from))

    def end_at(self, step, steps):
        """Reaches 0 at `steps` instead, going on from step `step`'s rate (constant until
        the new end's last `fraction`, if that is still ahead); returns the line's new
        start `(step, rate)`."""
        self.start = (int(step), self.rate(step))
        self.steps = check_int("steps", steps, minimum=1)
        return self.start

    def on_train_begin(self, logs=None):
        self._step = int(self.model.train_steps.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        self._rate = self.rate(self._step)
        self.model.g_optimizer.learning_rate = self._rate
        self.model.c_optimizer.learning_rate = (
            self._rate * self.critic_learning_rate / self.learning_rate)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._rate is not None:
            logs["learning_rate"] = self._rate


class StopOnSignal(keras.callbacks.Callback):
    """Turns SIGINT (Ctrl-C) and SIGTERM (what schedulers and preempted machines send)
    into a clean stop: the step in progress finishes, then training stops as at an
    epoch end, so the checkpoint and grid callbacks save the model where it stopped.

    The handlers are installed while `fit` runs and restored after. A second signal
    while stopping gets the previous handler's behaviour (e.g. KeyboardInterrupt). A
    SIGINT that the process ignores (a background job of a non-interactive shell) stays
    ignored. `received` is the signal number that stopped training, or None; the
    caller reports it (`python -m cwgan.train` exits with 128 + that number).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.received = None
        self._previous = {}

    def on_train_begin(self, logs=None):
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:
                self._previous[signum] = previous
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if self.received is None:
            self.received = signum
            logger.info("%s received: stopping after this step and saving.",
                        signal.Signals(signum).name)
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True  # a new fit() of the same run resets it

    def on_train_end(self, logs=None):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def _due(callback, epoch, every_n_epochs):
    """True after every N-th epoch, the last one, and an early stop."""
    return ((epoch + 1) % every_n_epochs == 0 or callback.model.stop_training
            or epoch + 1 == callback.params.get("epochs"))


class QualityEvaluation(keras.callbacks.Callback):
    """Evaluates the generator every N epochs and adds the figures to the epoch's logs.

    The figures (`cond_acc`, `min_class_acc` (the worst class's), `cond_acc_shape` (colour
    images), `fd`, `fd_class_mean`,
    `memorisation`, `precision`, `recall`, `density`, `coverage`, `kid`, `roughness`,
    `tone_spread`; see `cwgan.evaluation.judge`) then appear in `History` and in
    `JsonlLogger`'s file; the full result, per class, is in `.last`. Put it before those
    in the callback list.

    Args:
        judge: a `cwgan.evaluation.judge.Judge` (see `cwgan.evaluation.judge.make_judge`).
        every_n_epochs: evaluate after every N-th epoch (and the last). Defaults to 5.
        n_per_class: samples per class. Defaults to 200.
        seed: the noise seed, the same at every evaluation. Defaults to 0.
    """

    KEYS = ("cond_acc", "cond_acc_shape", "fd", "fd_class_mean", "memorisation",
            "precision", "recall", "density", "coverage", "kid", "roughness", "tone_spread")

    def __init__(self, judge, every_n_epochs=5, n_per_class=200, seed=0):
        super().__init__()
        self.judge = judge
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, minimum=1)
        self.n_per_class = n_per_class
        self.seed = check_seed("seed", seed)
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not _due(self, epoch, self.every_n_epochs):
            return
        with self.model.averaged_generator() as generator:  # what is saved
            self.last = evaluate_generator(generator, self.model.classes,
                                           self.model.latent_dim, self.judge,
                                           self.n_per_class, self.seed)
        for key in self.KEYS:
            # None: too few reference images, or (cond_acc_shape) grey images.
            if self.last["generator"][key] is not None:
                logs[key] = self.last["generator"][key]
        # Logs hold scalars only (Keras averages them); the worst class stands for the rest.
        logs["min_class_acc"] = min(self.last["generator"]["cond_acc_per_class"].values())


class BestGenerator(keras.callbacks.Callback):
    """Keeps the generator of the best evaluation so far (as StudioGAN keeps the best-FID
    step), beside the newest: `generator.keras` and `generator.json` (with the score) in
    `directory`, which `cwgan.sample(checkpoint_dir=directory)` reads.

    Reads the score from the epoch's logs, so put it after `QualityEvaluation`. A resumed
    run starts from the best score already in `directory`.

    Args:
        directory: where the best generator goes, e.g. `checkpoints/best`.
        monitor: the logged score. Defaults to "fd" (lower is better).
        dataset: recorded in `generator.json`. Defaults to "mnist".
    """

    def __init__(self, directory, monitor="fd", dataset="mnist"):
        super().__init__()
        self.directory = os.fspath(directory)
        self.monitor = monitor
        self.dataset = dataset
        self.best = None

    def on_train_begin(self, logs=None):
        path = os.path.join(self.directory, GENERATOR_CONFIG_FILE)
        if self.best is None and os.path.isfile(path):
            self.best = read_json(path).get(self.monitor)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or value < self.best:
            self.best = float(value)
            save_generator(self.model, self.directory, epoch + 1, self.dataset,
                           {self.monitor: self.best})


class JsonlLogger(keras.callbacks.Callback):
    """Appends one JSON line per epoch: epoch, generator iterations, wall time, the logs.

    Appends (never truncates), so a resumed run continues the same file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)
        self._start = None

    def on_train_begin(self, logs=None):
        if self._start is None:
            self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1,
                  "generator_iterations": int(self.model.generator_iterations.numpy()),
                  "seconds": round(time.monotonic() - self._start, 2)}
        record.update({key: float(value) for key, value in (logs or {}).items()})
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
