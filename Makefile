# The README's commands. Every install step lives here so that a fresh clone
# (and CI) needs nothing but python3.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2 --dist worksteal
DEMO ?= default
DEMO_OUT ?= demo_out

.PHONY: install test test-fast test-studies demo bench study tokenizer-study notebook clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,train,study]'
	# The bundled demo data; its metadata pulls TensorFlow/keras that the
	# loader never uses, so no dependencies (we read its files directly).
	$(PY) -m pip install --quiet --no-deps animal-mnist==0.4
	touch $@

# The library's tests; the study scripts' end-to-end runs are test-studies.
test: install
	$(PY) -m pytest -q $(PYTEST_ARGS) -m "not study" tests

# The edit-test loop: everything but the end-to-end tests marked slow.
test-fast: install
	$(PY) -m pytest -q $(PYTEST_ARGS) -m "not slow and not study" tests

# Every study script end to end on tiny runs (CI runs it after make test).
test-studies: install
	$(PY) -m pytest -q $(PYTEST_ARGS) -m study tests

# Both stages on animal-MNIST, then samples, edits and metrics in $(DEMO_OUT)/.
# Re-running resumes. DEMO=long (about 44 min) trains longer for better samples.
demo: install
	$(PY) -m maskgit_jax.tools.demo --out $(DEMO_OUT) --variant $(DEMO)

# Decode / AR / training speed and the hardware ceilings -> benchmarks/.
bench: install
	$(PY) -m benchmarks.bench

# The mask-schedule study (needs a finished demo) -> docs/studies/schedule_study.*
study: install
	$(PY) -m scripts.studies.schedule_study --run $(DEMO_OUT)

# Stage-1 recipes at equal minutes (needs demo_out/classifier.npz, the judge
# make demo trains) -> runs/tokenizer_study/tokenizer_study.{json,md}
tokenizer-study: install
	$(PY) -m scripts.studies.tokenizer_study --out runs/tokenizer_study \
	    --classifier $(DEMO_OUT)/classifier.npz

# Re-executes notebooks/quickstart.ipynb on the demo model (outputs committed).
notebook: install
	$(PY) scripts/execute_notebook.py --checkpoint $(DEMO_OUT)/maskgit

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis $(DEMO_OUT)
