r"""Draws a class-morph or latent-walk grid: `python -m cwgan.interpolate`.

    python -m cwgan.interpolate --kind=morph --from_label=3 --to_label=7 --out=morph.png
    python -m cwgan.interpolate --kind=walk --label=7 --steps=10 --n=6 --out=walk.png
    python -m cwgan.interpolate --checkpoint_dir=runs/pets --from_label=cat --to_label=dog

Rows are noise vectors (row r starts from the noise of sample r of --seed), columns are
steps: the label embedding moving from one class to the other (morph, linear), or the
noise moving along a great circle for one class (walk, slerp). A class is a class name
(a folder's name), or an index when no class has that name; the title names the classes.
Grey or colour, any size: the generator's. See `cwgan/sampling/interpolation.py`. Prints the
PNG's path.
"""

from absl import app, flags

from cwgan.sampling.interpolation import class_morph, latent_walk, save_interpolation_grid
from cwgan.sampling.sample import load_generator
from cwgan.utils import cli

_KIND = flags.DEFINE_enum("kind", "morph", ["morph", "walk"],
                          "morph: between two classes; walk: within one class.")
_FROM_LABEL = flags.DEFINE_string("from_label", None,
                                  "--kind=morph: the first column's class (name or index).")
_TO_LABEL = flags.DEFINE_string("to_label", None,
                                "--kind=morph: the last column's class (name or index).")
_LABEL = flags.DEFINE_string("label", None, "--kind=walk: the class (name or index).")
_STEPS = flags.DEFINE_integer("steps", 8, "Columns (2..32).")
_N = flags.DEFINE_integer("n", 4, "Rows (1..32).")
_SEED = flags.DEFINE_integer("seed", 0, "Noise seed.")
_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoint directory (default: nearest checkpoints/).")
_OUT = flags.DEFINE_string("out", None, "PNG path (default: morph_<from>_<to>.png or "
                           "walk_<label>.png in the current directory).")


def _check_label_flags(kind):
    """Raises a usage error naming the label flags `kind` needs that are missing."""
    needed = (_FROM_LABEL, _TO_LABEL) if kind == "morph" else (_LABEL,)
    missing = [f"--{f.name}" for f in needed if f.value is None]
    if missing:
        names = " and ".join(f"--{f.name}" for f in needed)
        raise app.UsageError(f"--kind={kind} needs {names}; missing {', '.join(missing)}.",
                             exitcode=2)


def _class(text, class_names):
    """A label flag's text as the library takes it: the class of that name, else the
    index the text reads as (as an int when both are one class, for plain messages),
    else the text itself, which the library refuses, naming it."""
    try:
        index = int(text)
    except ValueError:
        return text
    if text in class_names and class_names.index(text) != index:
        return text
    return index


def _name(label, class_names):
    """The class name of `label` (a name, or an index the library has accepted)."""
    return label if isinstance(label, str) else class_names[label]


def _as_flags(message):
    """The library's "argument `label_from`" is flag `--from_label` here (and so on)."""
    for argument, flag in (("label_from", "from_label"), ("label_to", "to_label")):
        message = message.replace(argument, flag)
    return message.replace("argument `", "flag `--")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}", exitcode=2)
    kind = _KIND.value
    _check_label_flags(kind)
    common = {"steps": _STEPS.value, "n": _N.value, "seed": _SEED.value,
              "checkpoint_dir": _CHECKPOINT_DIR.value}
    try:
        names = list(load_generator(_CHECKPOINT_DIR.value)[1]["class_names"])
        if kind == "morph":
            a, b = _class(_FROM_LABEL.value, names), _class(_TO_LABEL.value, names)
            images = class_morph(a, b, **common)
            title = f"{_name(a, names)} → {_name(b, names)} (seed {_SEED.value})"
            out = _OUT.value or f"morph_{_FROM_LABEL.value}_{_TO_LABEL.value}.png"
        else:
            label = _class(_LABEL.value, names)
            images = latent_walk(label, **common)
            title = f"walk of {_name(label, names)} (seed {_SEED.value})"
            out = _OUT.value or f"walk_{_LABEL.value}.png"
        save_interpolation_grid(out, images, title)
    except (ValueError, FileNotFoundError) as e:
        raise app.UsageError(_as_flags(str(e)), exitcode=2) from None
    print(out)


def run(argv=None):
    """Runs the CLI on `argv` (default `sys.argv`); the `cwgan-interpolate` console script."""
    cli.run(main, argv=argv)


if __name__ == "__main__":
    run()
