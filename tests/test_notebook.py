"""notebooks/quickstart.ipynb runs top to bottom (its code cells, in order, in one process)."""

import json
import os
import subprocess

from conftest import PYTHON, REPO, TEST_DATA, subprocess_env

NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def test_quickstart_notebook_runs_and_samples_a_seven(tmp_path):
    with open(NOTEBOOK) as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] for c in cells), "clear the notebook's outputs before committing"
    script = "\n\n".join("".join(c["source"]) for c in cells)
    script += "\nassert seven.shape == (1, 28, 28)\nprint('NOTEBOOK OK', len(history.epoch))\n"
    (tmp_path / "notebook.py").write_text(script)
    env = subprocess_env()
    env.update(MPLBACKEND="Agg", CWGAN_NOTEBOOK_STEPS="2", CWGAN_NOTEBOOK_EPOCHS="2",
               CWGAN_NOTEBOOK_BATCH="8", CWGAN_NOTEBOOK_DATA_DIR=TEST_DATA)
    proc = subprocess.run([PYTHON, "notebook.py"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NOTEBOOK OK 2" in proc.stdout
    # It wrote into ./checkpoints (notebooks/checkpoints/ in the repo, ignored by git).
    assert (tmp_path / "checkpoints" / "generator.keras").is_file()
    assert (tmp_path / "checkpoints" / "samples" / "grid_0002.png").is_file()
