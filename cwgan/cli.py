"""What every `python -m cwgan.<tool>` shares: absl's `app.run`, except that a flag value
absl cannot parse (e.g. `--epochs=x`) is a usage error, exit status 2, like every other
bad input."""

import sys

from absl import app, flags


def parse_flags(argv):
    """absl's flag parser; on a bad value prints absl's message and exits with status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"FATAL Flags parsing error: {e}\n"
                         "Pass --helpshort or --helpfull to see help on flags.\n")
        sys.exit(2)


def run(main, argv=None):
    """`app.run(main)` with `parse_flags`; `argv` defaults to `sys.argv`."""
    app.run(main, argv=argv, flags_parser=parse_flags)
