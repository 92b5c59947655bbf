r"""A load test of `python -m cwgan.serve` on loopback: `python -m cwgan.bench_serve`.

    python -m cwgan.bench_serve                          # 2,000 requests, 32 clients
    python -m cwgan.bench_serve --requests=200 --clients=8 --modes=batching

For each mode (batching on, then off) it starts the server in its own process on a free
127.0.0.1 port (the shipped generator unless --checkpoint_dir says otherwise), sends a
few warm-up requests, then `--requests` sample requests (`POST /api/sample`, `--n` PNG
images each, request i asks for class i mod classes with seed i) from `--clients`
concurrent clients, each on its own keep-alive connection. Every response is checked
against the images computed here for the same class and seed (`cwgan.sample`'s noise; at
most one 8-bit level apart, PNG's rounding). It prints, per mode: errors, wrong
responses, requests per second, p50 / p99 latency, and the server's mean batch (images
per generator call), as a table and (--json_out) JSON. The count and a time limit
(--max_seconds per mode) bound it; the figures are a benchmark's, never a test's.
"""

import os
import sys

from absl import app, flags

from cwgan.utils import cli

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Generator to serve (default: the shipped one).")
_REQUESTS = flags.DEFINE_integer("requests", 2000, "Sample requests per mode.", lower_bound=1,
                                 upper_bound=100_000)
_CLIENTS = flags.DEFINE_integer("clients", 32, "Concurrent clients.", lower_bound=1,
                                upper_bound=256)
_N = flags.DEFINE_integer("n", 4, "Images per request.", lower_bound=1, upper_bound=256)
_MODES = flags.DEFINE_list("modes", ["batching", "nobatching"],
                           "Server modes to measure, in order: batching, nobatching.")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 300.0, "Time limit per mode: requests not "
                                  "sent by then are counted as not sent.", lower_bound=1)
_JSON_OUT = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")

def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    from cwgan.sampling.sample import PRETRAINED_DIR
    from cwgan.serving.load_test import MODES, expected_pixels, measure
    bad = [m for m in _MODES.value if m not in MODES]
    if bad or not _MODES.value:
        raise app.UsageError(f"--modes={','.join(_MODES.value)}: expected a list of "
                             f"{', '.join(MODES)}.", exitcode=2)
    checkpoint_dir = _CHECKPOINT_DIR.value or PRETRAINED_DIR
    try:
        labels, pixels = expected_pixels(checkpoint_dir, _REQUESTS.value, _N.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e), exitcode=2) from None
    results = []
    print(f"{checkpoint_dir}: {_REQUESTS.value} requests of {_N.value} images from "
          f"{_CLIENTS.value} clients, {os.cpu_count()} CPUs")
    print(f"{'mode':<11} {'answered':>8} {'errors':>6} {'wrong':>5} {'req/s':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'batch':>6}")
    for mode in _MODES.value:
        r = measure(mode, checkpoint_dir, labels, pixels, _CLIENTS.value,
                    _MAX_SECONDS.value)
        results.append(r)
        print(f"{mode:<11} {r['answered']:>8} {r['errors']:>6} {r['wrong']:>5} "
              f"{r['requests_per_second']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} "
              f"{r['mean_batch_images'] or '-':>6}", flush=True)
    if _JSON_OUT.value:
        from cwgan.training.checkpoints import write_json
        write_json(_JSON_OUT.value, {"results": results})
    if any(r["errors"] or r["wrong"] or r["not_sent"] for r in results):
        sys.exit(1)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-bench-serve` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
