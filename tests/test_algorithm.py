"""The WGAN algorithm as it runs inside a real `ConditionalWGAN.train_step`.

The model trains with `run_eagerly=True` on networks wrapped in small recording models
(they delegate to the real tiny networks and log every call's inputs and outputs), on
optimizers that log each `apply`, and with a `ClipConstraint` subclass that logs each
clip. Every step's events are then checked against Algorithm 1 of the WGAN paper (and
WGAN-GP's penalty): fresh real batches, matching labels, the clip after every critic
update, one generator update last. Nothing here reads the metrics or the logs.

The step elements are built from real MNIST images so that every batch is told apart:
the images of a step are all distinct, and within a batch the labels are all distinct
and differ position by position from the next batch's, so a reused batch, labels rolled
by one or the next batch's labels all show.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cwgan
import cwgan.model.wgan

N_CRITIC = 3
BATCH = 4
STEPS = 3
LATENT = 8
CLIP = 0.01
SEED = 0


class Recorder:
    """The events of a run, in order. A plain object: Keras would copy a list attribute."""

    def __init__(self):
        self.events = []


class RecordingNetwork(keras.Model):
    """Delegates to `inner` and logs each call's inputs (and the critic's weights).

    Its trainable variables are the inner network's (tracked through `self.inner`), so
    the model attaches the clip to the real critic's weights.
    """

    def __init__(self, inner, kind, recorder):
        super().__init__(name=f"recording_{inner.name}")
        self.inner = inner
        self.kind = kind
        self.recorder = recorder

    @property
    def inputs(self):
        # ConditionalWGAN reads the noise length off `generator.inputs`.
        return self.inner.inputs

    @property
    def outputs(self):
        # ... and the images' shape off `generator.outputs`.
        return self.inner.outputs

    def call(self, inputs, training=False):
        outputs = self.inner(inputs, training=training)
        x, labels = (keras.ops.convert_to_numpy(t) for t in inputs)
        event = {"kind": self.kind, "x": x, "labels": labels,
                 "out": keras.ops.convert_to_numpy(outputs)}
        if self.kind == "critic":
            event["max_abs_weight"] = max(
                float(np.max(np.abs(keras.ops.convert_to_numpy(v))))
                for v in self.inner.trainable_variables)
        self.recorder.events.append(event)
        return outputs


class RecordingSGD(keras.optimizers.SGD):
    """SGD that logs the start and end of each `apply` (the clip runs in between)."""

    def __init__(self, recorder, role, **kwargs):
        super().__init__(**kwargs)
        self.recorder = recorder
        self.role = role

    def apply(self, grads, trainable_variables=None):
        self.recorder.events.append({"kind": "apply_begin", "role": self.role})
        result = super().apply(grads, trainable_variables)
        self.recorder.events.append({"kind": "apply_end", "role": self.role})
        return result


def recording_clip_class(recorder):
    class RecordingClip(cwgan.ClipConstraint):
        """Logs which variable each clip is applied to, and its largest entry before."""

        def __call__(self, w):
            recorder.events.append({
                "kind": "clip", "variable": w,
                "max_abs_before": float(np.max(np.abs(keras.ops.convert_to_numpy(w))))})
            return super().__call__(w)

    return RecordingClip


class StepMarker(keras.callbacks.Callback):
    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def on_train_batch_begin(self, batch, logs=None):
        self.recorder.events.append({"kind": "step"})


def step_elements(data):
    """STEPS elements of N_CRITIC * BATCH distinct real images; see the module docstring."""
    images, labels = data
    pools = {c: list(np.flatnonzero(labels == c)) for c in range(10)}
    chosen = []
    for batch in range(STEPS * N_CRITIC):
        for j in range(BATCH):
            chosen.append(pools[(BATCH * batch + j) % 10].pop(0))
    chosen = np.array(chosen)
    shape = (STEPS, N_CRITIC * BATCH)
    return (images[chosen].reshape(shape + images.shape[1:]).astype("float32"),
            labels[chosen].reshape(shape).astype("int32"))


class Run:
    """A short training run and its events split per step."""

    def __init__(self, model, recorder, images, labels):
        self.model = model
        self.images, self.labels = images, labels
        self.steps = []
        for event in recorder.events:
            if event["kind"] == "step":
                self.steps.append([])
            elif self.steps:
                self.steps[-1].append(event)
        self.critic_variables = model.critic.trainable_variables
        self.generator_variables = model.generator.trainable_variables

    def applies(self, step):
        return [e["role"] for e in self.steps[step] if e["kind"] == "apply_begin"]

    def segments(self, step):
        """The network calls before each apply of a step: [(role, [calls])]."""
        segments, calls = [], []
        for event in self.steps[step]:
            if event["kind"] in ("generator", "critic"):
                calls.append(event)
            elif event["kind"] == "apply_begin":
                segments.append((event["role"], calls))
                calls = []
        return segments

    def critic_updates(self, step):
        """The calls of each critic update of a step, checked to be the first N_CRITIC."""
        segments = self.segments(step)
        roles = [role for role, _ in segments]
        assert roles[:N_CRITIC] == ["critic"] * N_CRITIC, (
            f"step {step}: expected {N_CRITIC} critic updates first, got the update "
            f"order {roles}")
        return [calls for _, calls in segments[:N_CRITIC]]

    def real(self, step, i):
        sl = slice(i * BATCH, (i + 1) * BATCH)
        return self.images[step][sl], self.labels[step][sl]


def train(data, constraint, critic_lr):
    recorder = Recorder()
    keras.utils.set_random_seed(SEED)
    generator = RecordingNetwork(
        cwgan.build_generator(LATENT, width=8, embedding_dim=4), "generator", recorder)
    critic = RecordingNetwork(cwgan.build_critic(width=8), "critic", recorder)
    with pytest.MonkeyPatch.context() as patch:
        # The model makes its clip from the name in cwgan.model.wgan; record that one.
        patch.setattr(cwgan.model.wgan, "ClipConstraint", recording_clip_class(recorder))
        model = cwgan.ConditionalWGAN(generator=generator, critic=critic,
                                      latent_dim=LATENT, n_critic=N_CRITIC,
                                      clip_value=CLIP, seed=SEED, constraint=constraint)
    model.compile(g_optimizer=RecordingSGD(recorder, "generator", learning_rate=0.01),
                  c_optimizer=RecordingSGD(recorder, "critic", learning_rate=critic_lr),
                  run_eagerly=True, jit_compile=False)
    images, labels = step_elements(data)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    model.fit(dataset, epochs=1, verbose=0, callbacks=[StepMarker(recorder)])
    run = Run(model, recorder, images, labels)
    assert len(run.steps) == STEPS, f"expected {STEPS} training steps, got {len(run.steps)}"
    return run


@pytest.fixture(scope="module")
def clip_run(data):
    # A large critic rate: an unclipped update leaves the box [-c, c] by far.
    return train(data, "clip", critic_lr=0.5)


@pytest.fixture(scope="module")
def gp_run(data):
    return train(data, "gp", critic_lr=0.01)


@pytest.fixture(params=["clip", "gp"])
def run(request):
    return request.getfixturevalue(f"{request.param}_run")


def ints(values):
    return [int(v) for v in values]


def scored_rows(calls, real_images, fakes):
    """Each row the critic scored in `calls`: (what, index, label, image).

    `what` is "real" (index into `real_images`, exact match), "fake" (index into
    `fakes`, exact match) or "other" (neither: the penalty's interpolates).
    """
    rows = []
    for call in calls:
        if call["kind"] != "critic":
            continue
        for x, label in zip(call["x"], call["labels"]):
            real = [k for k, r in enumerate(real_images) if np.array_equal(x, r)]
            fake = [k for k, f in enumerate(fakes) if np.array_equal(x, f)]
            if real:
                rows.append(("real", real[0], int(label), x))
            elif fake:
                rows.append(("fake", fake[0], int(label), x))
            else:
                rows.append(("other", None, int(label), x))
    return rows


def update_parts(run, step, i, calls):
    """(generator calls, rows scored) of critic update i of a step."""
    generator_calls = [c for c in calls if c["kind"] == "generator"]
    fakes = np.concatenate([c["out"] for c in generator_calls]) if generator_calls else []
    rows = scored_rows(calls, run.images[step], fakes)
    return generator_calls, rows


def test_each_critic_update_scores_its_own_fresh_real_batch(run):
    for step in range(STEPS):
        for i, calls in enumerate(run.critic_updates(step)):
            _, rows = update_parts(run, step, i, calls)
            reals = [k for what, k, _, _ in rows if what == "real"]
            expected = list(range(i * BATCH, (i + 1) * BATCH))
            assert reals == expected, (
                f"step {step}, critic update {i}: scored the step's real images "
                f"{reals}, expected its own batch images[{i * BATCH}:{(i + 1) * BATCH}] "
                f"= {expected}")
            real_labels = [label for what, _, label, _ in rows if what == "real"]
            assert real_labels == ints(run.real(step, i)[1]), (
                f"step {step}, critic update {i}: real images scored with labels "
                f"{real_labels}, expected their own {ints(run.real(step, i)[1])}")


def test_fakes_are_generated_and_scored_with_the_real_batchs_labels(run):
    for step in range(STEPS):
        for i, calls in enumerate(run.critic_updates(step)):
            generator_calls, rows = update_parts(run, step, i, calls)
            real_labels = ints(run.real(step, i)[1])
            assert len(generator_calls) == 1, (
                f"step {step}, critic update {i}: expected one generator call, got "
                f"{len(generator_calls)}")
            given = ints(generator_calls[0]["labels"])
            assert given == real_labels, (
                f"step {step}, critic update {i}: fakes generated for labels {given}, "
                f"expected the real batch's labels {real_labels}")
            fakes = [(k, label) for what, k, label, _ in rows if what == "fake"]
            assert [k for k, _ in fakes] == list(range(BATCH)), (
                f"step {step}, critic update {i}: the critic scored fakes "
                f"{[k for k, _ in fakes]} of this update's generator output, expected "
                f"each of its {BATCH} once")
            scored_with = [label for _, label in fakes]
            assert scored_with == given, (
                f"step {step}, critic update {i}: fakes scored with labels {scored_with}, "
                f"expected the labels they were generated for {given}")


def test_clip_mode_scores_nothing_but_the_real_and_fake_batches(clip_run):
    for step in range(STEPS):
        for i, calls in enumerate(clip_run.critic_updates(step)):
            _, rows = update_parts(clip_run, step, i, calls)
            others = sum(what == "other" for what, _, _, _ in rows)
            assert others == 0, (
                f"step {step}, critic update {i}: the critic scored {others} images that "
                "are neither this update's real batch nor its fakes")


def test_gradient_penalty_uses_real_labels_and_interpolates_on_the_segments(gp_run):
    eps_seen = []
    for step in range(STEPS):
        for i, calls in enumerate(gp_run.critic_updates(step)):
            generator_calls, rows = update_parts(gp_run, step, i, calls)
            assert len(generator_calls) == 1, (
                f"step {step}, critic update {i}: expected one generator call")
            real, real_labels = gp_run.real(step, i)
            fake = generator_calls[0]["out"]
            others = [(label, x) for what, _, label, x in rows if what == "other"]
            assert len(others) == BATCH, (
                f"step {step}, critic update {i}: expected the penalty to score "
                f"{BATCH} interpolates, found {len(others)} other critic inputs")
            penalty_labels = [label for label, _ in others]
            assert penalty_labels == ints(real_labels), (
                f"step {step}, critic update {i}: the penalty's critic call got labels "
                f"{penalty_labels}, expected the real batch's {ints(real_labels)}")
            for j, (_, x_hat) in enumerate(others):
                direction = (real[j] - fake[j]).ravel()
                eps = float(np.dot((x_hat - fake[j]).ravel(), direction)
                            / np.dot(direction, direction))
                residual = np.max(np.abs(x_hat - (eps * real[j] + (1 - eps) * fake[j])))
                assert residual < 1e-5 and -1e-6 <= eps <= 1 + 1e-6, (
                    f"step {step}, critic update {i}, sample {j}: x_hat is not "
                    f"eps * real + (1 - eps) * fake of that sample with eps in [0, 1] "
                    f"(best eps {eps:.4f}, residual {residual:.2e})")
                eps_seen.append(eps)
    assert len(set(np.round(eps_seen, 6))) > 1, (
        f"expected eps drawn per sample, got the same eps {eps_seen[0]} everywhere")


def test_clip_runs_after_every_critic_update_on_critic_weights_only(clip_run):
    critic_ids = {id(v) for v in clip_run.critic_variables}
    generator_ids = {id(v) for v in clip_run.generator_variables}
    largest_before = 0.0
    for step in range(STEPS):
        clips = [e for e in clip_run.steps[step] if e["kind"] == "clip"]
        on_generator = [e["variable"].path for e in clips
                        if id(e["variable"]) in generator_ids]
        assert not on_generator, (
            f"step {step}: the clip was applied to generator variables {on_generator}")
        counts = {vid: 0 for vid in critic_ids}
        for e in clips:
            if id(e["variable"]) in counts:
                counts[id(e["variable"])] += 1
        assert set(counts.values()) == {N_CRITIC}, (
            f"step {step}: clip calls per critic variable {sorted(counts.values())}, "
            f"expected exactly n_critic={N_CRITIC} each (one per critic update)")
        # Each critic update's clips run inside its own apply, right after the update.
        inside, role = 0, None
        for e in clip_run.steps[step]:
            if e["kind"] == "apply_begin":
                role = e["role"]
            elif e["kind"] == "apply_end":
                role = None
            elif e["kind"] == "clip":
                assert role == "critic", (
                    f"step {step}: a clip ran outside a critic update (inside: {role})")
                inside += 1
                largest_before = max(largest_before, e["max_abs_before"])
        assert inside == len(critic_ids) * N_CRITIC
    assert largest_before > 2 * CLIP, (
        f"the critic's updates never left the box by much (largest |w| before a clip "
        f"{largest_before}), so this test would not see a missing clip")


def test_critic_weights_are_in_the_box_at_every_critic_call(clip_run):
    for step in range(STEPS):
        for index, event in enumerate(e for e in clip_run.steps[step]
                                      if e["kind"] == "critic"):
            assert event["max_abs_weight"] <= CLIP + 1e-7, (
                f"step {step}, critic call {index}: a critic weight is "
                f"{event['max_abs_weight']:.4f}, outside [-{CLIP}, {CLIP}]: the previous "
                "critic update was not clipped before this call")


def test_one_generator_update_after_the_critic_updates(run):
    for step in range(STEPS):
        roles = run.applies(step)
        assert roles == ["critic"] * N_CRITIC + ["generator"], (
            f"step {step}: the updates ran in the order {roles}, expected {N_CRITIC} "
            "critic updates then one generator update")
        segments = run.segments(step)
        _, calls = segments[-1]
        generator_calls = [c for c in calls if c["kind"] == "generator"]
        assert len(generator_calls) == 1, (
            f"step {step}: the generator update made {len(generator_calls)} generator "
            "calls, expected one")
        given = generator_calls[0]
        rows = scored_rows(calls, [], given["out"])
        fakes = [k for what, k, _, _ in rows if what == "fake"]
        assert fakes == list(range(len(given["out"]))) and len(rows) == len(fakes), (
            f"step {step}: the generator update's critic scored {len(rows)} images, of "
            f"which the generated ones {fakes}; expected exactly its generated batch")
        scored_with = [label for _, _, label, _ in rows]
        assert scored_with == ints(given["labels"]), (
            f"step {step}: the generator update's fakes were scored with labels "
            f"{scored_with}, expected the labels given to the generator "
            f"{ints(given['labels'])}")
        assert len(given["labels"]) == BATCH, (
            f"step {step}: the generator update used {len(given['labels'])} labels, "
            f"expected a batch of {BATCH}")
        after = run.steps[step][-1]
        assert after == {"kind": "apply_end", "role": "generator"}, (
            f"step {step}: the step went on after the generator update (last event "
            f"{after['kind']}), expected that update to end it")
