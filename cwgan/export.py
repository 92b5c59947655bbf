r"""Writes a trained generator as a TensorFlow SavedModel: `python -m cwgan.export`.

    python -m cwgan.export --export_dir=exported                  # the nearest checkpoints/
    python -m cwgan.export --checkpoint_dir=run1 --export_dir=exported

Serving signature `serving_default(label int32[N], noise float32[N, latent_dim])` ->
`images` float32 in [0, 1], [N, height, width] for grey images (MNIST: [N, 28, 28]) or
[N, height, width, 3] for colour ones, loadable with `tf.saved_model.load` alone; the
class names and image shape are in `assets.extra/cwgan_export.json` (see
`cwgan/sampling/export.py`). Prints the export's path.
"""

from absl import app, flags, logging

from cwgan.sampling.export import export_saved_model
from cwgan.utils import cli

_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoint directory (default: nearest checkpoints/).")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Where the SavedModel goes: a new or empty directory, or a previous "
    "export (replaced).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # the SavedModel writer's INFO chatter
    try:
        path = export_saved_model(_EXPORT_DIR.value, _CHECKPOINT_DIR.value)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        # "argument `x`" in the library's messages is flag --x here.
        raise app.UsageError(str(e).replace("argument `", "flag `--"), exitcode=2) from None
    print(path)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-export` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
