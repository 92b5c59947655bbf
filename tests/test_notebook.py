"""notebooks/quickstart.ipynb runs top to bottom in a Jupyter kernel, as a user would."""

import json
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO, TEST_DATA, subprocess_env

NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def test_quickstart_notebook_runs_shows_its_figures_and_samples_a_seven_and_a_named_three(
        tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "clear the notebook's outputs before committing"
    # The kernel inherits this environment: a small run on the shipped images.
    for key, value in dict(subprocess_env(), CWGAN_NOTEBOOK_STEPS="2",
                           CWGAN_NOTEBOOK_EPOCHS="2", CWGAN_NOTEBOOK_BATCH="8",
                           CWGAN_NOTEBOOK_DATA_DIR=TEST_DATA).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    # The shipped generator's digits, the grid, the Wasserstein estimate, yours; then
    # threes from the folder run.
    assert len(shown) == 5
    printed = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "the judge classifies" in printed  # the shipped generator's evaluation
    assert "(1, 28, 28) float32" in printed
    assert "(8, 32, 32, 3) float32" in printed
    # The folder as load_data read it (the last expression of its cell): names, shape,
    # and the training split's size (about one image in ten is held out).
    names = "(('0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), (32, 32, 3), "
    summary = [o["data"]["text/plain"] for c in code for o in c.outputs
               if o.get("data", {}).get("text/plain", "").startswith(names)]
    assert len(summary) == 1 and 150 <= int(summary[0][len(names):-1]) < 200, summary
    # It wrote into ./checkpoints (notebooks/checkpoints/ in the repo, ignored by git).
    assert (tmp_path / "checkpoints" / "generator.keras").is_file()
    assert (tmp_path / "checkpoints" / "samples" / "grid_0002.png").is_file()
    # The folder and its run went into ./runs/coloured_digits (ignored by git too).
    folder = tmp_path / "runs" / "coloured_digits"
    assert len(list((folder / "images" / "3").glob("*.png"))) == 21  # of the 200 digits
    assert (folder / "checkpoints" / "samples" / "grid_0002.png").is_file()
    info = json.loads((folder / "checkpoints" / "generator.json").read_text())
    assert (info["image_shape"], info["generator_iterations"]) == ([32, 32, 3], 4)
