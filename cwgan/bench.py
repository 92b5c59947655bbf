r"""Measures the training step: `python -m cwgan.bench` (see `cwgan/benchmarks/speed.py`).

    python -m cwgan.bench                      # the default model and batch (a few minutes)
    python -m cwgan.bench --json_out=bench.json
    python -m cwgan.bench --pipeline_only      # only the input pipeline on 10k and 60k PNGs
    python -m cwgan.bench --nopipeline         # everything but the input pipeline

The input-pipeline part writes its folders of PNGs once into cwgan's cache
(~/.cache/cwgan/bench/, `$CWGAN_CACHE_DIR`); the first run spends a minute or two on it.
"""

import json

from absl import app, flags

from cwgan.benchmarks.data import SOURCES, resolve_source
from cwgan.benchmarks.speed import run_bench, run_pipeline_bench, table
from cwgan.model.networks import ARCHITECTURES, CONDITIONINGS
from cwgan.training.run import TrainConfig
from cwgan.utils import cli

# The model and batch default to the training recipe's (TrainConfig).
_BATCH_SIZE = flags.DEFINE_integer("batch_size", TrainConfig.batch_size,
                                   "Images per critic batch.", lower_bound=1)
_N_CRITIC = flags.DEFINE_integer("n_critic", TrainConfig.n_critic,
                                 "Critic updates per generator update.", lower_bound=1)
_WIDTH = flags.DEFINE_integer("width", TrainConfig.width, "Network width.", lower_bound=1)
_ARCHITECTURE = flags.DEFINE_enum("architecture", TrainConfig.architecture, ARCHITECTURES,
                                  "Networks.")
_CONDITIONING = flags.DEFINE_enum("conditioning", TrainConfig.conditioning, CONDITIONINGS,
                                  "How the label enters the critic.")
_ITERATIONS = flags.DEFINE_integer("iterations", 8, "Generator iterations per repeat.",
                                   lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats; times are medians.", lower_bound=1)
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "64", "128", "256"],
                                 "Batch sizes for the scaling table.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "MNIST IDX dir (default: cwgan's loader).")
_LARGE_SIZE = flags.DEFINE_integer("large_size", 60000, "Images in the large-set run.",
                                   lower_bound=1)
_MATMUL_N = flags.DEFINE_integer("matmul_n", 2048, "Matrix size for the matmul peak.",
                                 lower_bound=16)
_PIPELINE = flags.DEFINE_bool("pipeline", True, "Also measure the input pipeline on "
                              "folders of PNGs (--nopipeline: skip it).")
_PIPELINE_ONLY = flags.DEFINE_bool("pipeline_only", False, "Measure only the input "
                                   "pipeline (XLA as --jit_compile=auto chooses).")
_PIPELINE_SIZES = flags.DEFINE_list(
    "pipeline_sizes", ["10000", "60000"], "Images in each folder of the input-pipeline "
    "part: peak memory is compared across them, the largest is timed.")
_PIPELINE_SOURCE = flags.DEFINE_enum(
    "pipeline_source", "auto", SOURCES, "Images of those folders: Fashion-MNIST (Debian's "
    "dataset-fashion-mnist), coloured digits, or auto (Fashion-MNIST when installed).")
_PIPELINE_ITERATIONS = flags.DEFINE_integer(
    "pipeline_iterations", 50, "Generator iterations per timed turn of the input-pipeline "
    "part.", lower_bound=1)
_PIPELINE_REPEATS = flags.DEFINE_integer(
    "pipeline_repeats", 5, "Rounds of the input-pipeline part; times are medians.",
    lower_bound=1)
_JSON_OUT = flags.DEFINE_string("json_out", None, "Also write the JSON object here.")


def _int_list(flag, minimum):
    """The integers of a list flag, each at least `minimum`; a usage error otherwise."""
    try:
        values = tuple(int(v) for v in flag.value)
    except ValueError:
        values = ()
    if not values or min(values) < minimum:
        raise app.UsageError(f"--{flag.name}={','.join(flag.value)}: expected integers "
                             f">= {minimum}.", exitcode=2)
    return values


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    batch_sizes = _int_list(_BATCH_SIZES, 1)
    pipeline_sizes = _int_list(_PIPELINE_SIZES, _BATCH_SIZE.value * _N_CRITIC.value)
    if _PIPELINE_ONLY.value and not _PIPELINE.value:
        raise app.UsageError("--pipeline_only with --nopipeline: nothing to measure.",
                             exitcode=2)
    if _PIPELINE.value:
        try:  # before minutes of timing: e.g. Fashion-MNIST asked for but not installed
            resolve_source(_PIPELINE_SOURCE.value, max(pipeline_sizes))
        except (ValueError, FileNotFoundError) as e:
            raise app.UsageError(f"--pipeline_source={_PIPELINE_SOURCE.value}: {e}",
                                 exitcode=2) from None
    if _PIPELINE_ONLY.value:
        result = {"config": {"batch_size": _BATCH_SIZE.value, "n_critic": _N_CRITIC.value,
                             "width": _WIDTH.value, "architecture": _ARCHITECTURE.value,
                             "conditioning": _CONDITIONING.value, "pipeline": True},
                  "folder_pipeline": run_pipeline_bench(
                      pipeline_sizes, _PIPELINE_SOURCE.value, _BATCH_SIZE.value,
                      _N_CRITIC.value, _WIDTH.value, _PIPELINE_ITERATIONS.value,
                      _PIPELINE_REPEATS.value, _ARCHITECTURE.value, _CONDITIONING.value)}
    else:
        result = run_bench(_BATCH_SIZE.value, _N_CRITIC.value, _WIDTH.value,
                           _ITERATIONS.value, _REPEATS.value, batch_sizes, _DATA_DIR.value,
                           _LARGE_SIZE.value, _MATMUL_N.value, _ARCHITECTURE.value,
                           _CONDITIONING.value, _PIPELINE.value, pipeline_sizes,
                           _PIPELINE_SOURCE.value, _PIPELINE_ITERATIONS.value,
                           _PIPELINE_REPEATS.value)
    print(json.dumps(result, indent=2))
    print(table(result))
    if _JSON_OUT.value:
        with open(_JSON_OUT.value, "w") as f:
            json.dump(result, f, indent=2)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-bench` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
