"""The public API and the package's layout: the commands at the top (`python -m
cwgan.X`, each only flags and `main`), everything else in capability folders. No public
name is a module's name, so running a command cannot shadow a public function; no module
imports a command, so absl's flags (several commands define --seed, --data_dir) never
clash in one Python."""

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess

import pytest

import cwgan
from conftest import PYTHON, TEST_DATA, subprocess_env

PACKAGE_DIR = cwgan.__path__[0]
COMMANDS = sorted(m.name for m in pkgutil.iter_modules(cwgan.__path__) if not m.ispkg)
FOLDERS = sorted(m.name for m in pkgutil.iter_modules(cwgan.__path__) if m.ispkg)
LIBRARY = sorted(m.name for m in pkgutil.walk_packages(cwgan.__path__, "cwgan.")
                 if m.name.split(".")[1] in FOLDERS)
CHECK = """
import inspect, runpy, sys
import cwgan
before = {name: getattr(cwgan, name) for name in cwgan.__all__}
sys.argv = ["cwgan." + sys.argv[1], "--help"]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit:  # absl's --help exits with status 1 after the help
    pass
changed = [n for n, obj in before.items()
           if getattr(cwgan, n) is not obj or inspect.ismodule(getattr(cwgan, n))]
print("changed:" + ",".join(changed))
"""


def _imported_modules(path):
    """The `cwgan.*` modules a source file imports (at any depth of its code)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(node.args[0].value)
    return {name for name in found if name.startswith("cwgan.")}


def test_the_top_level_holds_the_commands_and_the_capability_folders():
    assert COMMANDS == ["bench", "bench_serve", "demo_data", "evaluate", "export",
                        "interpolate", "report", "serve", "train"]
    assert {"data", "model", "training", "sampling", "evaluation", "serving"} <= set(FOLDERS)
    assert not set(cwgan.__all__) & set(COMMANDS + FOLDERS)


def test_no_module_and_no_test_imports_a_command():
    commands = {f"cwgan.{name}" for name in COMMANDS}
    sources = [os.path.join(root, f) for top in (PACKAGE_DIR, os.path.dirname(__file__))
               for root, _, files in os.walk(top) for f in files if f.endswith(".py")]
    offenders = {path: _imported_modules(path) & commands for path in sources}
    assert not {path: names for path, names in offenders.items() if names}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_leaves_every_public_name_as_it_was(command):
    proc = subprocess.run([PYTHON, "-c", CHECK, command], env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Try --helpfull" in proc.stdout and "Traceback" not in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "changed:", (
        f"python -m cwgan.{command} rebinds {proc.stdout.splitlines()[-1]}")


def test_after_importing_every_library_module_the_public_functions_work(tmp_path):
    before = {name: getattr(cwgan, name) for name in cwgan.__all__}
    for name in LIBRARY:
        importlib.import_module(name)
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
