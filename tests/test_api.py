"""The public API: no public name is a module's name, so importing a CLI module (what
`python -m cwgan.X` and the console scripts do) cannot shadow a public function."""

import importlib
import inspect
import os
import pkgutil
import subprocess

import pytest

import cwgan
from conftest import PYTHON, TEST_DATA, subprocess_env

MODULES = sorted(m.name for m in pkgutil.iter_modules(cwgan.__path__))
# The CLI modules define absl flags, several of the same name (--seed, --data_dir), so
# each is imported in a Python of its own.
CLI_MODULES = [name for name in MODULES if "flags.DEFINE" in open(
    os.path.join(cwgan.__path__[0], f"{name}.py")).read()]
CHECK = """
import importlib, inspect, sys
import cwgan
before = {name: getattr(cwgan, name) for name in cwgan.__all__}
importlib.import_module("cwgan." + sys.argv[1])
changed = [n for n, obj in before.items()
           if getattr(cwgan, n) is not obj or inspect.ismodule(getattr(cwgan, n))]
print(",".join(changed))
"""


def test_no_public_name_is_also_a_module_name():
    assert {"train", "evaluate"} <= set(CLI_MODULES)  # the CLIs the old names hid behind
    assert not set(cwgan.__all__) & set(MODULES)


@pytest.mark.parametrize("module", CLI_MODULES)
def test_importing_a_cli_module_leaves_every_public_name_as_it_was(module):
    proc = subprocess.run([PYTHON, "-c", CHECK, module], env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"import cwgan.{module} rebinds {proc.stdout}"


def test_after_importing_every_module_the_public_functions_work(tmp_path):
    before = {name: getattr(cwgan, name) for name in cwgan.__all__}
    importlib.import_module("cwgan.train")  # the CLI run by `python -m cwgan.train`
    for name in MODULES:
        if name not in CLI_MODULES:
            importlib.import_module(f"cwgan.{name}")
    for name, obj in before.items():
        assert getattr(cwgan, name) is obj and not inspect.ismodule(obj), name
    # The run behind `python -m cwgan.train`, then sampling from what it wrote.
    ckpt = tmp_path / "ck"
    model, _ = cwgan.train_model(cwgan.TrainConfig(
        digits=(3, 7), steps=2, steps_per_epoch=1, batch_size=4, n_critic=2, latent_dim=8,
        width=4, data_dir=TEST_DATA, checkpoint_dir=str(ckpt), jit_compile=False,
        verbose=0))
    assert int(model.generator_iterations.numpy()) == 2
    assert cwgan.sample(label=[3, 7], seed=0, checkpoint_dir=ckpt).shape == (2, 28, 28)
