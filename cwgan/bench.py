r"""Measures the training step: `python -m cwgan.bench` (see `cwgan/bench_lib.py`).

    python -m cwgan.bench                      # the default model and batch (a few minutes)
    python -m cwgan.bench --json_out=bench.json
"""

import json

from absl import app, flags

from cwgan import cli
from cwgan.bench_lib import run_bench, table

_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Images per critic batch (default: the "
                                  "recipe's).", lower_bound=1)
_N_CRITIC = flags.DEFINE_integer("n_critic", 5, "Critic updates per generator update.",
                                 lower_bound=1)
_WIDTH = flags.DEFINE_integer("width", 32, "Network width (default: the recipe's).",
                              lower_bound=1)
_ARCHITECTURE = flags.DEFINE_enum("architecture", "dcgan", ["dcgan", "mlp"], "Networks.")
_CONDITIONING = flags.DEFINE_enum("conditioning", "projection", ["concat", "projection"],
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
_JSON_OUT = flags.DEFINE_string("json_out", None, "Also write the JSON object here.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    try:
        batch_sizes = tuple(int(b) for b in _BATCH_SIZES.value)
    except ValueError:
        raise app.UsageError(f"--batch_sizes={_BATCH_SIZES.value}: expected integers.",
                             exitcode=2) from None
    result = run_bench(_BATCH_SIZE.value, _N_CRITIC.value, _WIDTH.value, _ITERATIONS.value,
                       _REPEATS.value, batch_sizes, _DATA_DIR.value, _LARGE_SIZE.value,
                       _MATMUL_N.value, _ARCHITECTURE.value, _CONDITIONING.value)
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
