# make book : set up .venv and build the executed book into _build/html
# make test : set up .venv and run the unit tests and the notebooks (pytest --nbval)
# make bench: the NMF speed benchmark (JSON)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.l2i-installed

.PHONY: setup book test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[book,test,bench]'
	touch $@

book: setup
	$(BIN)/jupyter-book build . --all --builder html -W --keep-going  # a failing cell fails the build
	@echo "The book is in _build/html/index.html"

test: setup
	$(BIN)/python -m pytest tests book --nbval --nbval-current-env --nbval-cell-timeout=900

bench: setup
	$(BIN)/python benchmarks/nmf_speed.py --json

clean:
	rm -rf _build .pytest_cache
