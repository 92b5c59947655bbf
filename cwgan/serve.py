r"""Serves a trained generator: a page and a JSON API, `python -m cwgan.serve`.

    python -m cwgan.serve --checkpoint_dir=checkpoints --port=8000
    python -m cwgan.serve --host=0.0.0.0 --model_name=digits   # reachable from other machines

Open http://127.0.0.1:8000/ for the page (a button per class, how many, a seed, a class
morph; `?label=7&n=8&seed=3` links to a view). The API (see `cwgan/serving/app.py`):
`POST /api/sample`, `GET /api/sample.png`, `POST /api/morph`, TensorFlow Serving's
`GET /v1/models/<name>` and `POST /v1/models/<name>:predict` (so its REST clients work
against this server as against the SavedModel of `cwgan.export`), `GET /healthz`.

Without --checkpoint_dir: the nearest `checkpoints/` (as `cwgan.sample` looks), else the
generator shipped with cwgan, with a warning. A newer `generator.keras` written there (by
a training run in progress) is picked up within --reload_seconds. Ctrl-C stops the server
after the requests in flight.
"""

import logging

from absl import app, flags

from cwgan.sampling.sample import own_or_pretrained
from cwgan.utils import cli

_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir", None, "Directory holding generator.keras (default: the nearest "
    "checkpoints/, else the generator shipped with cwgan).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on: loopback by "
                            "default; 0.0.0.0 exposes the server to the network.")
_PORT = flags.DEFINE_integer("port", 8000, "TCP port (0: any free one, printed).",
                             lower_bound=0, upper_bound=65535)
_MODEL_NAME = flags.DEFINE_string(
    "model_name", None, "<name> in the /v1/models/<name> routes and on the page (default: "
    "the run's name, the checkpoint directory's own: e.g. checkpoints).")
_BATCHING = flags.DEFINE_boolean("batching", True, "Gather concurrent requests into one "
                                 "generator call (--nobatching: one call per request).")
_RELOAD_SECONDS = flags.DEFINE_float("reload_seconds", 2.0, "How often to look for a newer "
                                     "generator.keras; 0 never reloads.", lower_bound=0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    name = _MODEL_NAME.value
    if name is not None and (not name or not all(c.isalnum() or c in "-_." for c in name)):
        raise app.UsageError(f"--model_name={_MODEL_NAME.value!r}: expected letters, digits, "
                             "'-', '_' or '.'.", exitcode=2)
    import uvicorn  # after the flags: --help stays quick

    from cwgan.serving.app import make_app
    try:
        directory = own_or_pretrained(_CHECKPOINT_DIR.value)
        application = make_app(directory, model_name=_MODEL_NAME.value,
                               batching=_BATCHING.value, reload_seconds=_RELOAD_SECONDS.value)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(str(e).replace("argument `", "flag `--"), exitcode=2) from None
    logging.getLogger("cwgan.serve").setLevel(logging.INFO)
    state = application.state.cwgan
    print(f"Serving {directory} (generator iteration "
          f"{state.model.info.get('generator_iterations')}, batching "
          f"{'on' if _BATCHING.value else 'off'}) as {state.model_name!r}.", flush=True)
    uvicorn.run(application, host=_HOST.value, port=_PORT.value, log_level="info",
                access_log=False)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-serve` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
