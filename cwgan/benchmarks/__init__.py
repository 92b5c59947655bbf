"""What `python -m cwgan.bench` measures: the train step's speed and the input pipeline's, on
the benchmark's data sources."""
