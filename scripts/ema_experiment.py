"""Experiment (docs/recipe.md): would an average of the generator's weights sample better?

Trains the recipe (the `python -m cwgan.train` defaults, plus TrainConfig overrides given
as JSON) for MINUTES while keeping exponential moving averages of the generator's weights
(decays 0.99, 0.995, 0.999, kept on the host: an experiment, not a feature), then scores
the raw generator and each average with `cwgan.evaluate` (500 samples per class):

    .venv/bin/python scripts/ema_experiment.py runs/ema_15min 15
    .venv/bin/python scripts/ema_experiment.py runs/ema_b32_15min 15 '{"batch_size": 32}'

Prints one line per generator and a final JSON line.
"""

import json
import os
import sys

import keras

import cwgan
from cwgan import train_lib
from cwgan.checkpoints import GENERATOR_CONFIG_FILE, GENERATOR_FILE, read_json, write_json

DECAYS = (0.99, 0.995, 0.999)


class WeightAverages(keras.callbacks.Callback):
    """Exponential moving averages of the generator's weights, updated after every step."""

    def on_train_begin(self, logs=None):
        if not hasattr(self, "averages"):
            weights = self.model.generator.get_weights()
            self.averages = {d: [w.copy() for w in weights] for d in DECAYS}

    def on_train_batch_end(self, batch, logs=None):
        weights = self.model.generator.get_weights()
        for decay, average in self.averages.items():
            for a, w in zip(average, weights):
                a *= decay
                a += (1 - decay) * w


def score(generator, weights, info, directory):
    """Saves `generator` with `weights` as a checkpoint dir and evaluates it."""
    os.makedirs(directory, exist_ok=True)
    clone = keras.models.clone_model(generator)
    clone.set_weights(weights)
    clone.save(os.path.join(directory, GENERATOR_FILE))
    write_json(os.path.join(directory, GENERATOR_CONFIG_FILE), info)
    g = cwgan.evaluate(checkpoint_dir=directory, n_per_class=500)["generator"]
    return {"cond_acc": round(g["cond_acc"], 4),
            "min_class_acc": round(min(g["cond_acc_per_class"].values()), 4),
            "fd": round(g["fd"], 2), "fd_class_mean": round(g["fd_class_mean"], 2),
            "memorisation": g["memorisation"]}


def main(out, minutes, overrides="{}"):
    overrides = json.loads(overrides)
    run = train_lib.prepare(cwgan.TrainConfig(max_minutes=float(minutes), checkpoint_dir=out,
                                              fresh=True, **overrides))
    averages = WeightAverages()
    run.callbacks.insert(1, averages)
    model, _ = run.fit()
    info = read_json(os.path.join(out, GENERATOR_CONFIG_FILE))
    results = {"raw": score(model.generator, model.generator.get_weights(), info,
                            os.path.join(out, "raw"))}
    print("raw", results["raw"], flush=True)
    for decay in DECAYS:
        name = f"ema{decay}"
        results[name] = score(model.generator, averages.averages[decay], info,
                              os.path.join(out, name))
        print(name, results[name], flush=True)
    print(json.dumps({"generator_iterations": info["generator_iterations"],
                      "overrides": overrides, **results}))


if __name__ == "__main__":
    main(*sys.argv[1:])
