# `make train` and `make test` are all a fresh machine needs: each creates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test bench clean pretrained

$(STAMP): requirements.txt requirements-test.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . -r requirements-test.txt
	touch $(STAMP)

# Trains on all ten digits for 15 minutes, writing grids and checkpoints into checkpoints/.
train: $(STAMP)
	$(PY) -m cwgan.train --digits --max_minutes=15

# Rebuilds the generator shipped in cwgan/sampling/pretrained/mnist/ (what cwgan.sample uses
# when none of yours is found): the recipe for PRETRAINED_STEPS steps, a fixed schedule (the
# same on every machine), into runs/pretrained, with the evaluator's figures every 5,000
# steps in its metrics.jsonl (to see whether it still improves). It runs in pieces of at
# most PIECE_MINUTES: run it again to continue where the last piece stopped. Once the run
# has all its steps: its evaluation, then the three files copied into the package.
PRETRAINED_STEPS ?= 50000
PIECE_MINUTES ?= 60
pretrained: $(STAMP)
	$(PY) -m cwgan.train --digits --steps=$(PRETRAINED_STEPS) --nofit_to_time \
		--max_minutes=$(PIECE_MINUTES) --eval_every=5000 --checkpoint_dir=runs/pretrained
	@if $(PY) -c "import json, sys; sys.exit(json.load(open('runs/pretrained/generator.json'))\
			['generator_iterations'] < $(PRETRAINED_STEPS))"; then \
		$(PY) -m cwgan.evaluate --checkpoint_dir=runs/pretrained --n_per_class=500 --cas \
			> runs/pretrained/eval.json.tmp && mv runs/pretrained/eval.json.tmp \
			runs/pretrained/eval.json && cp runs/pretrained/generator.keras \
			runs/pretrained/generator.json runs/pretrained/eval.json \
			cwgan/sampling/pretrained/mnist/; \
	else echo "runs/pretrained has not reached $(PRETRAINED_STEPS) steps: run make pretrained" \
		"again to continue it."; fi

# Test files are spread over TEST_WORKERS processes (a file's tests stay together, so its
# module fixtures are built once); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) --dist=loadfile

# The speed benchmark (step time, XLA, input pipeline) and the server's load test.
bench: $(STAMP)
	$(PY) -m cwgan.bench
	$(PY) -m cwgan.bench_serve

clean:
	rm -rf $(VENV) build *.egg-info
