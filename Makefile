# `make train` and `make test` are all a fresh machine needs: each creates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test bench clean pretrained pretrained-colour

$(STAMP): requirements.txt requirements-test.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . -r requirements-test.txt
	touch $(STAMP)

# Trains on all ten digits for 15 minutes, writing grids and checkpoints into checkpoints/.
train: $(STAMP)
	$(PY) -m cwgan.train --digits --max_minutes=15

# $(call ship,RUN,STEPS,PACKAGE_DIR,EVALUATE_FLAGS), in a target's recipe: once the run in
# RUN has all its STEPS, its evaluation (eval.json, written then renamed), then the
# generator's two files and eval.json copied into PACKAGE_DIR; before that, a note to run
# the target again.
SHIPPED := cwgan/sampling/pretrained
ship = @if $(PY) -c "import json, sys; sys.exit(json.load(open('$(1)/generator.json'))\
		['generator_iterations'] < $(2))"; then \
	$(PY) -m cwgan.evaluate --checkpoint_dir=$(1) --n_per_class=500 $(4) \
		> $(1)/eval.json.tmp && mv $(1)/eval.json.tmp $(1)/eval.json && mkdir -p $(3) \
		&& cp $(1)/generator.keras $(1)/generator.json $(1)/eval.json $(3)/; \
	else echo "$(1) has not reached $(2) steps: run make $@ again to continue it."; fi

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
	$(call ship,runs/pretrained,$(PRETRAINED_STEPS),$(SHIPPED)/mnist,--cas)

# Rebuilds the colour generator shipped in cwgan/sampling/pretrained/coloured_digits/
# (cwgan.PRETRAINED_COLOUR_DIR): the recipe on `python -m cwgan.demo_data`'s coloured 32x32
# digits of the first 10,000 MNIST training images (the same folder on every machine,
# online or not), for COLOUR_STEPS steps, in pieces as `make pretrained` runs.
COLOUR_STEPS ?= 20000
COLOUR_DATA ?= runs/coloured_digits
pretrained-colour: $(STAMP)
	test -d $(COLOUR_DATA) || $(PY) -m cwgan.demo_data --out=$(COLOUR_DATA) \
		--splits=train,test --limit=10000
	$(PY) -m cwgan.train --data_dir=$(COLOUR_DATA) --steps=$(COLOUR_STEPS) --nofit_to_time \
		--max_minutes=$(PIECE_MINUTES) --eval_every=5000 --checkpoint_dir=runs/pretrained_colour
	$(call ship,runs/pretrained_colour,$(COLOUR_STEPS),$(SHIPPED)/coloured_digits)

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
