"""Checkpoints written by an earlier cwgan still load and resume.

tests/data/run_before_layout/ is a tiny run (digits 0 and 1, width 2, two steps, the
critic's own layers LabelPlanesConv2D and RowwiseDot) written by cwgan at commit 65c000e,
when every module sat in one flat folder: its Keras configs name modules such as
`cwgan.critic_layers` that moved since. Keras finds cwgan's classes by their registered
names (`cwgan>ClassName`), so where a module lives must not matter.
"""

import json
import shutil
import subprocess
import zipfile

import numpy as np

import cwgan
from conftest import PYTHON, TEST_DATA, subprocess_env

OLD_RUN = f"{TEST_DATA}/run_before_layout"
RESUME_FILE = "resume/ckpt-00000002.keras"

# The options the old run was made with (its train_config.json), with two more steps.
OLD_OPTIONS = dict(digits=(0, 1), steps_per_epoch=1, batch_size=4, n_critic=1, width=2,
                   latent_dim=4, keep_checkpoints=1, jit_compile=False, data_dir=TEST_DATA,
                   verbose=0,
                   # Made before the recipe's critic had batch norm and its generator a
                   # full-size output convolution: their saved values.
                   critic_norm="none", generator_output="upsample")


def test_the_old_run_names_modules_of_the_old_layout():
    with zipfile.ZipFile(f"{OLD_RUN}/{RESUME_FILE}") as archive:
        config = json.loads(archive.read("config.json"))
    text = json.dumps(config)
    assert '"registered_name": "cwgan>LabelPlanesConv2D"' in text
    assert '"registered_name": "cwgan>RowwiseDot"' in text
    assert '"module": "cwgan.critic_layers"' in text


def test_an_old_resume_checkpoint_resumes_where_it_left_off(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    model, _ = cwgan.train_model(cwgan.TrainConfig(steps=4, checkpoint_dir=str(run),
                                                   **OLD_OPTIONS))
    assert int(model.train_steps.numpy()) == 4
    assert int(model.generator_iterations.numpy()) == 4
    layers = {type(layer).__name__ for layer in model.critic.layers}
    assert {"LabelPlanesConv2D", "RowwiseDot"} <= layers
    assert (run / "resume" / "ckpt-00000004.keras").exists()


def test_an_old_generator_loads_and_samples():
    generator, info = cwgan.load_generator(OLD_RUN)
    assert info["classes"] == [0, 1] and info["latent_dim"] == 4
    images = cwgan.sample(label=1, n=3, seed=0, checkpoint_dir=OLD_RUN)
    assert images.shape == (3, 28, 28) and np.isfinite(images).all()


def test_an_old_resume_checkpoint_loads_in_a_fresh_python():
    """Only `import cwgan` registers the classes; no module of the old layout is asked for."""
    code = ("import cwgan, keras; "
            f"m = keras.saving.load_model({OLD_RUN + '/' + RESUME_FILE!r}, safe_mode=True); "
            "print(int(m.train_steps.numpy()))")
    out = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "2"
