"""Where cwgan keeps what it trains or measures once per machine: the evaluator's
classifiers, the XLA choice, the checks of image folders, the benchmark's data."""

import os

CACHE_ENV_VAR = "CWGAN_CACHE_DIR"


def cache_dir():
    """The cache folder: `$CWGAN_CACHE_DIR` when set (e.g. a temporary directory, so that a
    test run neither reads nor writes the user's cache), else `$XDG_CACHE_HOME/cwgan`, else
    `~/.cache/cwgan`."""
    return os.environ.get(CACHE_ENV_VAR) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "cwgan")
