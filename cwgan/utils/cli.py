"""What every `python -m cwgan.<tool>` shares: absl's `app.run`, except that a flag value
absl cannot parse (e.g. `--batch_size=x`) is a usage error, exit status 2, like every other
bad input, and that a usage error prints its message, not the whole help text."""

import functools
import sys

from absl import app, flags

_HELP_HINT = "Pass --helpshort or --helpfull to see help on flags."


def _fail(message, exitcode):
    """Prints `message` and where help is, as absl does for a bad flag; exits."""
    sys.stderr.write(f"FATAL {message}\n{_HELP_HINT}\n")
    sys.exit(exitcode)


def parse_flags(argv):
    """absl's flag parser; on a bad value prints absl's message and exits with status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        _fail(f"Flags parsing error: {e}", 2)


def _short_usage_errors(main):
    """`main`, with an `app.UsageError` printed in two lines (absl's `app.run` would print
    the whole help text first, burying the one line that matters)."""
    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except app.UsageError as e:
            _fail(e, e.exitcode)
    return wrapped


def run(main, argv=None):
    """`app.run(main)` with `parse_flags` and short usage errors; `argv` defaults to
    `sys.argv`."""
    app.run(_short_usage_errors(main), argv=argv, flags_parser=parse_flags)
