"""What every part of cwgan shares: argument checks, and the runner of the `python -m
cwgan.<command>` CLIs."""
