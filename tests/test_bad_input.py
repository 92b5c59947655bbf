"""Every bad input, at every entry point, gets a one-line error naming the value and what
is allowed (exit status 2 for the CLI), and leaves the files already on disk untouched."""

import json
import math
import subprocess

import keras
import numpy as np
import pytest

import cwgan
from cwgan.data.loading import write_idx
from conftest import PYTHON, TEST_DATA, subprocess_env

EXISTING = dict(digits=(3, 7), steps=2, steps_per_epoch=2, batch_size=4, n_critic=2,
                latent_dim=16, width=8, data_dir=TEST_DATA, jit_compile=False, verbose=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files a user already has: a trained run, a data dir, a corrupt and a foreign model."""
    root = tmp_path_factory.mktemp("world")
    cwgan.train_model(cwgan.TrainConfig(checkpoint_dir=str(root / "run"), **EXISTING))
    (root / "a_file").write_text("not a directory")
    raw_x, raw_y = _raw_test_data()
    for name, x, y in [("bad_labels", raw_x, np.where(raw_y == 0, 12, raw_y).astype(np.uint8)),
                       ("mismatch", raw_x, raw_y[:-1]), ("no_threes", raw_x[raw_y != 3],
                                                            raw_y[raw_y != 3]),
                       ("doubled", np.concatenate([raw_x, raw_x]),
                        np.concatenate([raw_y, raw_y]))]:
        (root / name).mkdir()
        write_idx(root / name / "train-images-idx3-ubyte.gz", x)
        write_idx(root / name / "train-labels-idx1-ubyte.gz", y)
    (root / "truncated").mkdir()
    write_idx(root / "truncated" / "train-images-idx3-ubyte.gz", raw_x)
    (root / "truncated" / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x00\x08\x01")
    for name, model_bytes in [("corrupt", b"PK\x03\x04 truncated zip"), ("foreign", None)]:
        directory = root / name
        directory.mkdir()
        (directory / "generator.json").write_text(
            (root / "run" / "generator.json").read_text())
        if model_bytes is None:
            foreign = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                        keras.layers.Dense(10)])
            foreign.save(directory / "generator.keras")
        else:
            (directory / "generator.keras").write_bytes(model_bytes)
    (root / "no_info").mkdir()
    (root / "no_info" / "generator.keras").write_bytes(
        (root / "run" / "generator.keras").read_bytes())
    return root


def _raw_test_data():
    from cwgan.data.loading import read_idx
    return (read_idx(f"{TEST_DATA}/train-images-first200-idx3-ubyte.gz"),
            read_idx(f"{TEST_DATA}/train-labels-first200-idx1-ubyte.gz"))


def snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


# Runs `python -m cwgan.train` once per argument list, all in one child Python (one start
# of TensorFlow for every case; the test process imports no command, see test_api.py).
# Prints [[exit status, stderr], ...] as JSON.
CLI_DRIVER = """
import contextlib, io, json, sys, traceback
from absl import flags
import cwgan.train
results = []
for args in json.loads(sys.argv[1]):
    flags.FLAGS.unparse_flags()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cwgan.train.run(["cwgan.train", *args])
            status = 0
        except SystemExit as e:
            status = e.code
        except BaseException:
            traceback.print_exc()
            status = None
    results.append([status, err.getvalue()])
print(json.dumps(results))
"""


# (flags, text the message must hold); the run dir already holds a run on digits 3 and 7.
CLI_CASES = [
    (["--digits=12"], "--digits"),
    (["--digits=3,3"], "repeats a digit"),
    (["--digits="], "--digits=''"),
    (["--digits=3,x"], "--digits='3,x'"),
    (["--steps=0"], "steps"),
    (["--steps=-3"], "steps"),
    (["--steps=3"], "steps=3. Expected a positive multiple of steps_per_epoch=2"),
    (["--eval_every=3"], "eval_every=3. Expected 0 or a positive multiple of steps_per_epoch"),
    (["--batch_size=5000"], "batch_size=5000"),
    (["--n_critic=0"], "n_critic"),
    (["--n_critic_warmup=2"], "n_critic_warmup=2. Expected 0 (no warm-up) or more than n_critic=2"),
    (["--n_critic_warmup=10"], "n_critic_warmup: saved 0, asked 10"),
    (["--clip_value=0"], "--clip_value"),
    (["--clip_value=-0.01"], "clip_value=-0.01"),
    (["--learning_rate=nan"], "learning_rate=nan"),
    (["--seed=abc"], "seed"),
    (["--max_minutes=0"], "max_minutes=0"),
    (["--width=0"], "width"),
    (["--upsampling=bilinear"], "--upsampling"),
    (["--ema=1"], "ema=1.0. Expected 0 (off) or a number in (0, 1)"),
    (["--ema=0.9"], "ema: saved 0.0, asked 0.9"),
    (["--upsampling=resize"], "upsampling: saved 'transpose', asked 'resize'"),
    (["--generator_conditioning=noise"], "--generator_conditioning"),
    (["--generator_conditioning=layers"],
     "generator_conditioning: saved 'input', asked 'layers'"),
    (["--generator_output=rgb"], "--generator_output"),
    (["--generator_output=upsample"], "generator_output: saved 'conv', asked 'upsample'"),
    (["--critic_depth=0"], "--critic_depth"),
    (["--critic_depth=2"], "critic_depth: saved 1, asked 2"),
    (["--dataset=cifar10"], "dataset"),
    (["--latent_dim=32"], "latent_dim: saved 16, asked 32"),
    (["--digits=1,2"], "digits: saved [3, 7], asked [1, 2]"),
    # The same digits of other data (twice the images): a run is tied to its data.
    (["--data_dir={root}/doubled"], "data: saved 42 images from {test_data}"),
    (["--data_dir={root}/doubled"], "asked 84 images from {root}/doubled"),
    (["--checkpoint_dir={root}/a_file/run"], "checkpoint_dir"),
    (["--data_dir={root}/missing"], "missing"),
    (["--data_dir={root}/bad_labels"], "labels must lie in 0..9"),
    (["unexpected"], "unexpected"),
]


def _cli_args(args, root):
    """`args` (with {root} filled in) over the defaults of the run in `<root>/run`."""
    args = [a.format(root=root) for a in args]
    defaults = {"--digits=3,7", "--batch_size=4", "--n_critic=2", "--latent_dim=16",
                "--width=8", "--steps=2", "--steps_per_epoch=2", "--nojit_compile",
                f"--data_dir={TEST_DATA}", f"--checkpoint_dir={root}/run"}
    given = {a.split("=")[0] for a in args}
    return sorted(a for a in defaults if a.split("=")[0] not in given) + args


@pytest.fixture(scope="module")
def cli_results(world):
    """`[(exit status, stderr)]` of `python -m cwgan.train` on each of CLI_CASES, and
    whether the files in `world` were left untouched."""
    before = snapshot(world)
    cases = [_cli_args(args, world) for args, _ in CLI_CASES]
    proc = subprocess.run([PYTHON, "-c", CLI_DRIVER, json.dumps(cases)], cwd=str(world),
                          env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), snapshot(world) == before


@pytest.mark.parametrize("case", range(len(CLI_CASES)), ids=[c[0][0] for c in CLI_CASES])
def test_cli_usage_errors_exit_2_naming_the_value(cli_results, world, case):
    results, untouched = cli_results
    status, stderr = results[case]
    assert status == 2, stderr
    assert CLI_CASES[case][1].format(root=world, test_data=TEST_DATA) in stderr
    assert "Traceback" not in stderr
    assert untouched


def _load(**kwargs):
    return lambda root: cwgan.load_mnist(**{"data_dir": TEST_DATA, **kwargs})


def _sample(**kwargs):
    return lambda root: cwgan.sample(**{"checkpoint_dir": root / "run", **kwargs})


def _model(**kwargs):
    return lambda root: cwgan.ConditionalWGAN(
        generator=cwgan.build_generator(8, width=4, embedding_dim=2),
        critic=cwgan.build_critic(width=4), **{"latent_dim": 8, **kwargs})


# (call, error type, text the message must hold)
API_CASES = {
    "sample label 12": (_sample(label=12), ValueError, "label=12"),
    "sample label unknown name": (_sample(label="seven"), ValueError, "label='seven'"),
    "sample label float": (_sample(label=7.0), ValueError, "label=7.0"),
    "sample label bool": (_sample(label=True), ValueError, "label=True"),
    "sample label 2-D": (_sample(label=np.array([[3, 7]])), ValueError, "[[3, 7]]"),
    "sample label untrained": (_sample(label=1), ValueError, "classes [3, 7] only"),
    "sample n 0": (_sample(label=3, n=0), ValueError, "n=0"),
    "sample n huge": (_sample(label=3, n=10**9), ValueError, "n=1000000000"),
    "sample seed str": (_sample(seed="abc"), ValueError, "seed='abc'"),
    "sample seed negative": (_sample(seed=-1), ValueError, "seed=-1"),
    "sample missing dir": (lambda root: cwgan.sample(checkpoint_dir=root / "nowhere"),
                           FileNotFoundError, "nowhere"),
    "sample corrupt model": (lambda root: cwgan.sample(checkpoint_dir=root / "corrupt"),
                             ValueError, "not a readable Keras model"),
    "sample foreign model": (lambda root: cwgan.sample(label=3, checkpoint_dir=root / "foreign"),
                             ValueError, "is not a cwgan generator"),
    "sample no generator.json": (lambda root: cwgan.sample(checkpoint_dir=root / "no_info"),
                                 FileNotFoundError, "generator.json is missing"),
    "load digit 10": (_load(digits=[10]), ValueError, "[10] not in 0..9"),
    "load digits empty": (_load(digits=[]), ValueError, "it is empty"),
    "load digits str": (_load(digits="37"), ValueError, "digits='37'"),
    "load missing dir": (lambda root: cwgan.load_mnist(data_dir=root / "missing"),
                         FileNotFoundError, "missing"),
    "load truncated labels": (lambda root: cwgan.load_mnist(data_dir=root / "truncated"),
                              ValueError, "train-labels-idx1-ubyte.gz"),
    "load labels out of range": (lambda root: cwgan.load_mnist(data_dir=root / "bad_labels"),
                                 ValueError, "found 1..12"),
    "load count mismatch": (lambda root: cwgan.load_mnist(data_dir=root / "mismatch"),
                            ValueError, "200 images but labels of shape (199,)"),
    "load empty class": (lambda root: cwgan.load_mnist(digits=[3], data_dir=root / "no_threes"),
                         ValueError, "no images of the requested class(es) [3]"),
    "load dataset": (_load(dataset="cifar10"), ValueError, "dataset='cifar10'"),
    "model n_critic 0": (_model(n_critic=0), ValueError, "n_critic=0"),
    "model clip 0": (_model(clip_value=0), ValueError, "clip_value=0"),
    "model clip nan": (_model(clip_value=math.nan), ValueError, "clip_value=nan"),
    "model latent mismatch": (_model(latent_dim=9), ValueError, "latent_dim=9"),
    "model classes repeat": (_model(classes=[3, 3]), ValueError, "repeats a digit"),
    "model constraint": (_model(constraint="spectral"), ValueError, "constraint='spectral'"),
    "model seed str": (_model(seed="x"), ValueError, "seed='x'"),
    "generator upsampling": (lambda root: cwgan.build_generator(upsampling="pixel"),
                             ValueError, "upsampling='pixel'"),
    "generator conditioning": (lambda root: cwgan.build_generator(conditioning="concat"),
                               ValueError, "conditioning='concat'. Expected one of ('input'"),
    "generator output": (lambda root: cwgan.build_generator(output="rgb"), ValueError,
                         "output='rgb'. Expected one of ('upsample', 'conv')"),
    "mlp generator output": (lambda root: cwgan.build_networks("mlp", generator_output="conv"),
                             ValueError, "generator_output='conv' are dcgan options"),
    "critic depth 0": (lambda root: cwgan.build_critic(depth=0), ValueError,
                       "depth=0. Expected an integer >= 1"),
    "mlp critic depth": (lambda root: cwgan.build_networks("mlp", critic_depth=2), ValueError,
                         "critic_depth=2 are dcgan options"),
    "config batch > data": (lambda root: cwgan.train_model(cwgan.TrainConfig(
        **{**EXISTING, "batch_size": 500, "checkpoint_dir": str(root / "run")})),
        ValueError, "batch_size=500"),
}


@pytest.mark.parametrize("name", API_CASES)
def test_api_errors_are_one_line_naming_the_value(world, name):
    call, error, named = API_CASES[name]
    before = snapshot(world)
    with pytest.raises(error) as raised:
        call(world)
    message = str(raised.value)
    assert named in message
    assert "\n" not in message
    assert snapshot(world) == before
