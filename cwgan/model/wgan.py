"""`ConditionalWGAN`: a label-conditioned Wasserstein GAN with weight clipping."""

import contextlib
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from cwgan.data.loading import NUM_CLASSES, parse_digits
from cwgan.model.constraints import ClipConstraint
from cwgan.model.losses import wasserstein_critic_loss, wasserstein_generator_loss
from cwgan.model.networks import build_critic, build_generator
from cwgan.model.reference_norm import ReferenceBatchNorm
from cwgan.utils.checks import (check_int, check_momentum, check_positive_float, check_seed,
                                check_warmup)

DEFAULT_LEARNING_RATE = 5e-5  # The WGAN paper's RMSprop learning rate.
GP_LEARNING_RATE = 1e-4  # WGAN-GP's Adam(1e-4, beta_1=0, beta_2=0.9).
CONSTRAINTS = ("clip", "gp")
OPTIMIZERS = ("rmsprop", "adam")
# The WGAN paper's code (not its Algorithm 1) runs 100 critic updates before each of the
# first 25 generator iterations and before every 500th; `n_critic_warmup` sets the 100.
WARMUP_ITERATIONS = 25
WARMUP_EVERY = 500
# The warm-up skips the generator update inside the step (a tf.cond); tf.distribute cannot
# all-reduce gradients inside a conditional branch.
WARMUP_REPLICATED = ("n_critic_warmup={warmup} cannot run on {replicas} replicas: the "
                     "generator update it skips would need a gradient all-reduce inside a "
                     "conditional, which tf.distribute does not support. Expected "
                     "n_critic_warmup=0 under a strategy with several replicas.")


def _dense(grads):
    """Gradients as dense tensors.

    The label embeddings' gradients arrive as `tf.IndexedSlices`. Without XLA, Keras'
    RMSprop then takes a sparse path whose index arithmetic fails when the gradient is
    NaN: an `InvalidArgumentError` from inside the step instead of `TerminateOnNonFinite`'s
    clear message (tests/test_resume.py). The tables have 10 rows; dense costs nothing.
    """
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


def _class_names(class_names, num_classes):
    """`class_names` as a tuple of `num_classes` distinct strings (default: "0", "1", ...)."""
    if class_names is None:
        return tuple(str(c) for c in range(num_classes))
    names = tuple(class_names) if not isinstance(class_names, str) else ()
    if len(names) != num_classes or len(set(names)) != len(names) or not all(
            isinstance(n, str) and n for n in names):
        raise ValueError(f"Invalid value for argument `class_names`. Received: class_names="
                         f"{class_names!r}. Expected {num_classes} distinct non-empty "
                         "strings, one per class.")
    return names


def paper_optimizer(constraint):
    """The optimizer its paper uses with `constraint`: RMSprop for weight clipping (WGAN),
    Adam for the gradient penalty (WGAN-GP)."""
    return "adam" if constraint == "gp" else "rmsprop"


@keras.saving.register_keras_serializable(package="cwgan")
class ConditionalWGAN(keras.Model):
    """A conditional WGAN (Arjovsky et al. 2017, Algorithm 1, with labels).

    One `train_step` is one generator iteration: `n_critic` critic updates, each on a
    fresh real batch and a fake batch generated for that batch's labels, with every
    critic weight clipped to [-clip_value, clip_value] right after each update; then one
    generator update. Losses are the Wasserstein ones (no sigmoid, no log).

    Each element of the training data is `(images, labels)` holding the `n_critic` real
    batches stacked, shapes `(n_critic * batch_size,) + image_shape` in [-1, 1] and
    `(n_critic * batch_size,)`; `cwgan.make_dataset` (or `ImageData.stream`) builds such
    a dataset. `image_shape` is the generator's output shape (28x28x1 by default).

    Under a `tf.distribute` strategy (build and compile the model inside
    `strategy.scope()`; see `cwgan.training.distribute` and docs/distributed.md), `batch_size` is
    the global batch: each of the R replicas trains on `n_critic` batches of
    `batch_size / R`, the gradients are those of the global-batch losses, the clip holds
    on every replica's copy of the critic, and the reported losses are global means.

    Example:

    ```python
    images, labels = cwgan.load_mnist()
    model = cwgan.ConditionalWGAN()
    model.compile()
    model.fit(cwgan.make_dataset(images, labels, n_critic=model.n_critic), epochs=5)
    ```

    Args:
        generator: a model `[noise, labels] -> images` (functional, or exposing `inputs`
            and `outputs` like one: the noise length and image shape are read off them).
            Defaults to `build_generator`.
        critic: a model `[images, labels] -> scores`. Defaults to `build_critic`. The
            clip is attached to all its trainable variables (and applied once now, so the
            critic starts inside the box, as in the paper's code).
        latent_dim: length of the noise vector. Defaults to 100.
        classes: the labels trained on, e.g. `[3, 7]`; recorded so that sampling can
            refuse other labels. Defaults to all `num_classes`.
        num_classes: how many label values there are (labels 0..num_classes-1), for the
            default networks. Defaults to 10.
        class_names: each label's name (recorded for grids, sampling by name and the
            export). Defaults to the digits' ("0".."9") or the label numbers.
        n_critic: critic updates per generator update. Defaults to 5.
        clip_value: the clip c. Defaults to 0.01.
        seed: seed of the noise drawn inside the train step. Defaults to None.
        constraint: how the critic is kept Lipschitz: "clip" (the WGAN paper, default) or
            "gp" (WGAN-GP, Gulrajani et al. 2017: no clipping; a penalty
            gp_weight * E[(|grad f(x_hat | y)| - 1)^2] on random interpolates x_hat of
            real and fake images of the same labels).
        gp_weight: the penalty's lambda, for "gp". Defaults to 10.
        n_critic_warmup: if not 0, the schedule of the paper's code: at least this many
            critic updates (100 there) before each of the first 25 generator iterations
            and every 500th, `n_critic` before the others. A step then always runs
            `n_critic` critic updates on its batches, and updates the generator only once
            enough have run since its last update, so a warm-up iteration spans several
            steps. Defaults to 0 (Algorithm 1: always `n_critic`). Refused under a
            strategy with several replicas (built in its scope).
        batch_fakes: generate a step's `n_critic` fake batches in one generator call
            (the generator does not change during the critic updates, so they are the
            same draws, normalised as one batch by the generator's batch norm) rather
            than one call per critic update. Defaults to False (the paper's order).
        mixed_batches: with batch norm in the critic, score real and fake in one pass,
            so that the norm's statistics are of both (compare_gan's way, used by Lucic
            et al. 2018): in separate passes each batch is centred on its own mean and
            the critic cannot see a shift of the fakes' mean. The generator's update then
            scores its fakes beside the step's last real batch. Defaults to False (the
            WGAN paper's code: separate passes, which trained far better at equal steps;
            docs/recipe.md, seventh round). Without batch norm it changes nothing.
        ema: if not 0, the momentum of an exponential moving average of the generator's
            weights, kept beside them (Polyak averaging, as in ProGAN and StyleGAN:
            it smooths the last updates' noise out of the weights) and saved with the
            model; `averaged_generator()` puts it in the generator, and cwgan saves,
            draws and evaluates that. Defaults to 0 (none).
    """

    def __init__(self, generator=None, critic=None, latent_dim=100, classes=None,
                 n_critic=5, clip_value=0.01, seed=None, constraint="clip", gp_weight=10.0,
                 n_critic_warmup=0, ema=0.0, num_classes=NUM_CLASSES, class_names=None,
                 batch_fakes=False, mixed_batches=False, **kwargs):
        super().__init__(**kwargs)
        if constraint not in CONSTRAINTS:
            raise ValueError(f"Invalid value for argument `constraint`. Received: "
                             f"constraint={constraint!r}. Expected one of {CONSTRAINTS}.")
        self.constraint = constraint
        self.gp_weight = check_positive_float("gp_weight", gp_weight)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.classes = parse_digits(classes, self.num_classes)
        self.class_names = _class_names(class_names, self.num_classes)
        self.n_critic = check_int("n_critic", n_critic, minimum=1)
        self.n_critic_warmup = check_warmup(n_critic_warmup, self.n_critic)
        if self.n_critic_warmup and self._replicated():
            raise ValueError(WARMUP_REPLICATED.format(
                warmup=self.n_critic_warmup,
                replicas=self.distribute_strategy.num_replicas_in_sync))
        self.seed = check_seed("seed", seed)
        self.clip = ClipConstraint(clip_value)
        self.clip_value = self.clip.clip_value
        self.generator = (build_generator(self.latent_dim, self.num_classes)
                          if generator is None else generator)
        self.critic = build_critic(self.num_classes) if critic is None else critic
        # The images' shape is the generator's (a functional model's, or a wrapper's that
        # says it like one).
        self.image_shape = tuple(self.generator.outputs[0].shape[1:])
        self.batch_fakes = bool(batch_fakes)
        self.mixed_batches = bool(mixed_batches)
        # A critic with batch norm scores each sample by its batch: real and fake then go
        # through it in separate passes, as in the WGAN paper's code, unless mixed; one
        # with reference batch norm takes [real; fake] in every training pass. Both ways
        # of letting the fakes' statistics meet the real ones were far worse at equal
        # steps (docs/recipe.md, seventh round).
        batch_norm = any(isinstance(layer, keras.layers.BatchNormalization)
                         for layer in self.critic.layers)
        reference = any(isinstance(layer, ReferenceBatchNorm) for layer in self.critic.layers)
        self._separate_passes = batch_norm and not self.mixed_batches
        # A batch-dependent critic scored in one pass: the generator's fakes join a real
        # batch there too, so that they are scored as in the critic's updates.
        self._generator_sees_real = (batch_norm or reference) and not self._separate_passes
        generator_latent = self.generator.inputs[0].shape[-1]
        if generator_latent != self.latent_dim:
            raise ValueError(
                f"Invalid value for argument `latent_dim`. Received: latent_dim="
                f"{self.latent_dim}, but the generator takes noise of length "
                f"{generator_latent}. Expected them to match.")
        if constraint == "clip":
            for variable in self.critic.trainable_variables:
                variable.constraint = self.clip
                variable.assign(self.clip(variable))
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.ema = check_momentum("ema", ema)
        self._averages = [
            self.add_weight(shape=v.shape, dtype=v.dtype, initializer="zeros",
                            trainable=False, aggregation="only_first_replica",
                            name=f"generator_average_{i}")
            for i, v in enumerate(self.generator.trainable_variables)] if self.ema else []
        # Counted by the model rather than read off the optimizers: with the warm-up a
        # step need not update the generator, and under mixed precision an optimizer
        # skips (and does not count) a step whose gradients overflowed. `train_steps`
        # is where a resumed run picks up the data stream.
        self.train_steps = self._counter("train_steps")
        self.critic_streak = self._counter("critic_streak")
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein_estimate")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.built = True

    def compile(self, g_optimizer=None, c_optimizer=None, **kwargs):
        """Sets the two optimizers; other keyword arguments go to `keras.Model.compile`.

        Args:
            g_optimizer: the generator's optimizer. Defaults to RMSprop(5e-5), or for
                constraint="gp" Adam(1e-4, beta_1=0, beta_2=0.9) as in WGAN-GP.
            c_optimizer: the critic's optimizer. Defaults as g_optimizer. RMSprop, not
                a momentum method, as the WGAN paper recommends for the clipped critic.
                When the networks compute in float16 (built under the `mixed_float16`
                policy), both are wrapped in `keras.optimizers.LossScaleOptimizer`.
            **kwargs: e.g. `jit_compile`, `steps_per_execution`, `run_eagerly`.
                `jit_compile` defaults to True (XLA) on every device: Keras enables it only
                on GPUs, but it made this default model's step faster on the CPUs measured
                too (docs/results.md; the command line measures it per machine, see
                `cwgan.training.xla`). With several replicas (a `tf.distribute` strategy)
                it is False: XLA cannot compile a step whose variables live on several
                devices.
        """
        kwargs.setdefault("jit_compile", not self._replicated())
        self.g_optimizer = self._with_loss_scaling(g_optimizer or self.default_optimizer())
        self.c_optimizer = self._with_loss_scaling(c_optimizer or self.default_optimizer())
        # `model.optimizer` is the generator's, so `model.optimizer.iterations` counts
        # generator iterations (what TensorBoard and Keras' callbacks call the step).
        super().compile(optimizer=self.g_optimizer, **kwargs)
        # Built now, each on its own network, so that a reload can restore their state.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)

    def _counter(self, name):
        # Updated in replica context under a strategy: count once, not once per replica.
        return self.add_weight(shape=(), dtype="int64", initializer="zeros",
                               trainable=False, aggregation="only_first_replica", name=name)

    def _replicated(self):
        return self.distribute_strategy.num_replicas_in_sync > 1

    @property
    def jit_compile(self):
        return keras.Model.jit_compile.fget(self)

    @jit_compile.setter
    def jit_compile(self, value):
        # Keras' own fallback for models XLA cannot compile, extended to replicated ones:
        # under MirroredStrategy XLA fails at the first step ("Trying to access resource
        # ... located in device CPU:1 from device CPU:0").
        if value and self._replicated():
            warnings.warn(f"XLA cannot compile a train step replicated over "
                          f"{self.distribute_strategy.num_replicas_in_sync} devices. "
                          "Proceeding with `jit_compile=False`.")
            value = False
        keras.Model.jit_compile.fset(self, value)

    def default_optimizer(self, learning_rate=None, optimizer=None):
        """A new optimizer: `optimizer` (of `OPTIMIZERS`; None: the paper's for this
        constraint, `paper_optimizer`) at `learning_rate` (None: the paper's). Adam's betas
        are the WGAN-GP paper's (0, 0.9) with gp and DCGAN's (0.5, 0.999) with clipping,
        as in Lucic et al. 2018's clipped WGAN."""
        if optimizer not in (None,) + OPTIMIZERS:
            raise ValueError(f"Invalid value for argument `optimizer`. Received: optimizer="
                             f"{optimizer!r}. Expected one of {OPTIMIZERS} or None.")
        gp = self.constraint == "gp"
        if (optimizer or paper_optimizer(self.constraint)) == "rmsprop":
            return keras.optimizers.RMSprop(learning_rate or DEFAULT_LEARNING_RATE)
        return keras.optimizers.Adam(
            learning_rate or (GP_LEARNING_RATE if gp else DEFAULT_LEARNING_RATE),
            beta_1=0.0 if gp else 0.5, beta_2=0.9 if gp else 0.999)

    @contextlib.contextmanager
    def averaged_generator(self):
        """Within the block, `self.generator` holds the moving average of its weights.

        Only with `ema` and once the generator has been updated; otherwise the generator
        is left as it is. Batch-norm statistics stay the live ones. The live weights
        return on leaving the block, whatever happens in it.
        """
        if not self.ema or int(self.generator_iterations.numpy()) == 0:
            yield self.generator
            return
        variables = self.generator.trainable_variables
        live = [np.array(v.numpy(), copy=True) for v in variables]  # numpy() may alias
        for variable, average in zip(variables, self._averages):
            variable.assign(average)
        try:
            yield self.generator
        finally:
            for variable, value in zip(variables, live):
                variable.assign(value)

    def _update_averages(self):
        """After a generator update: average <- ema * average + (1 - ema) * weights (at
        the first update, the weights themselves)."""
        momentum = ops.where(ops.equal(self.generator_iterations, 1), 0.0, self.ema)
        for variable, average in zip(self.generator.trainable_variables, self._averages):
            average.assign(momentum * average + (1.0 - momentum) * variable)

    def _with_loss_scaling(self, optimizer):
        optimizer = keras.optimizers.get(optimizer)
        mixed = any(layer.compute_dtype == "float16"
                    for network in (self.generator, self.critic) for layer in network.layers)
        if mixed and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @property
    def metrics(self):
        """critic_loss, generator_loss, wasserstein_estimate; with "gp", gradient_penalty.

        `wasserstein_estimate` is E[f(real)] - E[f(fake)], the critic's estimate of the
        distance, without the penalty; `critic_loss` is what the critic minimises
        (-estimate, plus gp_weight * gradient_penalty under "gp").
        """
        trackers = [self.critic_loss_tracker, self.generator_loss_tracker,
                    self.wasserstein_tracker]
        return trackers + [self.penalty_tracker] if self.constraint == "gp" else trackers

    @property
    def generator_iterations(self):
        """Generator updates done so far (a variable, saved with the model)."""
        return self.g_optimizer.iterations

    def call(self, inputs, training=False):
        """`model([noise, labels])` generates images, like `model.generator`."""
        return self.generator(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras calls this at the start of fit() under a strategy, to build layers, compiled
        # losses and metrics, and the optimizer from one batch. Ours are all built by
        # __init__ and compile(), so there is nothing to do; and Keras' version breaks
        # MultiWorkerMirroredStrategy: it averages the (images, labels) batch with
        # strategy.reduce, which that strategy refuses for a tuple (keras-team/keras#20585).
        pass

    def train_step(self, data):
        # Under a strategy Keras runs this once per replica, on a contiguous 1/R of the
        # element: n_critic batches of batch_size / R. So the replicas' i-th batches are
        # not one device's i-th batch split up; with shuffled images that is all the same.
        images, labels = data[0], data[1]
        steps = images.shape[0]
        if steps is not None and steps % self.n_critic:
            raise ValueError(
                f"A training step got {steps} images, not a multiple of n_critic="
                f"{self.n_critic}. Each step takes n_critic real batches stacked; build "
                "the dataset with cwgan.make_dataset(..., n_critic=model.n_critic) (under "
                "a strategy, with a batch_size divisible by the number of replicas).")
        images = ops.reshape(ops.cast(images, "float32"),
                             (self.n_critic, -1) + self.image_shape)
        labels = ops.reshape(ops.cast(labels, "int32"), (self.n_critic, -1))
        fakes = None
        if self.batch_fakes:
            flat = ops.reshape(labels, (-1,))
            fakes = ops.reshape(
                self.generator([self._noise(ops.shape(flat)[0]), flat], training=True),
                (self.n_critic, -1) + self.image_shape)
        critic_loss = estimate = penalty = 0.0
        for i in range(self.n_critic):
            step_loss, step_estimate, step_penalty = self._critic_step(
                images[i], labels[i], None if fakes is None else fakes[i])
            critic_loss += step_loss / self.n_critic
            estimate += step_estimate / self.n_critic
            penalty += step_penalty / self.n_critic
        self.train_steps.assign_add(1)
        if self.n_critic_warmup:
            generator_loss, updated = self._scheduled_generator_step(images[-1], labels[-1])
        else:
            generator_loss, updated = self._generator_step(images[-1], labels[-1]), 1.0
        # This replica's means; Keras averages the results over replicas, and the trackers'
        # variables sum over replicas when read, so the logs hold global-batch means.
        self.critic_loss_tracker.update_state(critic_loss)
        self.generator_loss_tracker.update_state(generator_loss, sample_weight=updated)
        self.wasserstein_tracker.update_state(estimate)
        if self.constraint == "gp":
            self.penalty_tracker.update_state(penalty)
        logs = {m.name: m.result() for m in self.metrics}
        strategy = tf.distribute.get_strategy()
        replicas = strategy.num_replicas_in_sync
        if replicas > 1 and replicas > len(strategy.extended.worker_devices):
            # Several workers: Keras averages the logs over them with
            # strategy.reduce("MEAN", value, axis=0), which fails on a scalar
            # (keras-team/keras#20585). A length-1 axis averages to the same scalar.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _noise(self, batch_size):
        return self._draw(keras.random.normal, (batch_size, self.latent_dim))

    def _draw(self, distribution, shape):
        """`distribution(shape)` seeded by the model's SeedGenerator, different per replica.

        Under a strategy every replica holds its own copy of the SeedGenerator's state
        (Keras creates it with aggregation "none") and the copies advance in lockstep, so
        a plain draw would give every replica the same noise. Instead each replica draws
        for the whole global batch and keeps its own rows: the replicas differ, and
        together they use exactly the numbers one device would draw for the global batch.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas == 1:
            return distribution(shape, seed=self.seed_generator)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        values = distribution((replicas * shape[0],) + tuple(shape[1:]),
                              seed=self.seed_generator)
        return ops.reshape(values, (replicas,) + tuple(shape))[replica]

    @staticmethod
    def _replica_share(loss):
        """The part of the global-batch loss whose gradient this replica contributes.

        Each replica's loss is a mean over its own 1/R of the global batch, and the
        optimizer sums the replicas' gradients (an all-reduce SUM in `optimizer.apply`).
        Dividing by R makes that sum the gradient of the mean over the global batch, so
        a step is the same on R replicas as on one device. The loss reported in the
        metrics stays unscaled: Keras averages it over replicas.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def _scores(self, real, fake, labels):
        """The critic's scores of `real` and of `fake` (both of `labels`)."""
        if self._separate_passes:
            return (self.critic([real, labels], training=True),
                    self.critic([fake, labels], training=True))
        # One pass over real and fake together; fine for a critic of single samples.
        batch_size = ops.shape(real)[0]
        scores = self.critic(
            [ops.concatenate([real, fake], 0), ops.concatenate([labels, labels], 0)],
            training=True)
        return scores[:batch_size], scores[batch_size:]

    def _critic_step(self, real, labels, fake=None):
        """One critic update against `fake` (default: a new fake batch of `labels`);
        returns (its loss, the Wasserstein estimate, the penalty).

        The estimate E[f(real | y)] - E[f(fake | y)] is the loss's Wasserstein part alone:
        with the gradient penalty (0 under the clip) the critic minimises
        -estimate + gp_weight * penalty.
        """
        if fake is None:
            fake = self.generator([self._noise(ops.shape(real)[0]), labels], training=True)
        with tf.GradientTape() as tape:
            wasserstein = wasserstein_critic_loss(*self._scores(real, fake, labels))
            penalty = (self._gradient_penalty(real, fake, labels)
                       if self.constraint == "gp" else ops.zeros(()))
            loss = wasserstein + self.gp_weight * penalty
            # Loss scaling under float16 (a no-op otherwise), after the replica's share.
            scaled = self.c_optimizer.scale_loss(self._replica_share(loss))
        grads = _dense(tape.gradient(scaled, self.critic.trainable_variables))
        # Sums the gradients over replicas, updates, then clips: the clip constraint's
        # assign runs on every replica's copy (critic weights have aggregation "none").
        self.c_optimizer.apply(grads, self.critic.trainable_variables)
        return loss, -wasserstein, penalty

    def _gradient_penalty(self, real, fake, labels):
        """E[(|d f(x_hat | y) / d x_hat| - 1)^2], x_hat between real and fake of label y."""
        eps = self._draw(keras.random.uniform, (ops.shape(real)[0], 1, 1, 1))
        x_hat = eps * real + (1.0 - eps) * fake
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            scores = self.critic([x_hat, labels], training=True)
        grads = tape.gradient(scores, x_hat)
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def _scheduled_generator_step(self, real, labels):
        """The generator update if enough critic updates ran since the last; (loss, 0 or 1).

        The paper's code trains the critic 100 times before the first 25 generator
        iterations, so that the generator first follows a critic near its optimum, and
        again before every 500th, to refresh it.
        """
        self.critic_streak.assign_add(self.n_critic)
        streak = ops.convert_to_tensor(self.critic_streak)
        iteration = self.g_optimizer.iterations
        warm = ops.logical_or(iteration < WARMUP_ITERATIONS, iteration % WARMUP_EVERY == 0)
        needed = ops.where(warm, self.n_critic_warmup, self.n_critic)
        due = streak >= ops.cast(needed, streak.dtype)
        loss = tf.cond(due, lambda: self._generator_step(real, labels),
                       lambda: ops.zeros(()))
        self.critic_streak.assign(ops.where(due, ops.zeros_like(streak), streak))
        return loss, ops.cast(due, "float32")

    def _generator_step(self, real, labels):
        """One generator update on fakes of `labels`; `real` (the step's last real batch)
        joins them in the critic's pass only with `mixed_batches`."""
        noise = self._noise(ops.shape(labels)[0])
        with tf.GradientTape() as tape:
            fake = self.generator([noise, labels], training=True)
            if self._generator_sees_real:
                scores = self._scores(real, fake, labels)[1]
            else:
                scores = self.critic([fake, labels], training=True)
            loss = wasserstein_generator_loss(scores)
            scaled = self.g_optimizer.scale_loss(self._replica_share(loss))
        grads = _dense(tape.gradient(scaled, self.generator.trainable_variables))
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        if self.ema:
            self._update_averages()
        return loss

    # Keras does not save a SeedGenerator's state; resuming should continue its stream.
    _SEED_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        if self._SEED_KEY in store.keys():
            self.seed_generator.state.assign(store[self._SEED_KEY])
        super().load_own_variables({k: store[k] for k in store.keys() if k != self._SEED_KEY})

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "latent_dim": self.latent_dim,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "n_critic": self.n_critic,
            "clip_value": self.clip_value,
            "seed": self.seed,
            "constraint": self.constraint,
            "gp_weight": self.gp_weight,
            "n_critic_warmup": self.n_critic_warmup,
            "ema": self.ema,
            "batch_fakes": self.batch_fakes,
            "mixed_batches": self.mixed_batches,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "critic"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "c_optimizer": keras.saving.serialize_keras_object(self.c_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(**{k: keras.saving.deserialize_keras_object(v)
                        for k, v in config.items()})
