# make book : set up .venv and build the executed book into _build/html
# make test : set up .venv and run the unit tests and the notebooks (pytest --nbval)
# make bench: the NMF speed benchmark (JSON)
# make test-browser: open every built page in headless Chromium and check audio, figures, widgets
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.l2i-installed
# The project's shared recordings beside this checkout, where they are: l2i finds data only through
# arguments and environment variables (else it downloads into its cache).
SHARED := $(abspath ../shared/data)
export L2I_FSDD  ?= $(if $(wildcard $(SHARED)/fsdd/recordings),$(SHARED)/fsdd/recordings)
export L2I_ESC50 ?= $(if $(wildcard $(SHARED)/esc50/meta/esc50.csv),$(SHARED)/esc50)

# The ipywidgets HTML manager that renders saved widget state in the built pages, from npm, checked.
HTML_MANAGER        := 1.0.15
HTML_MANAGER_SHA256 := 2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638
VENDOR              := _static/vendor/html-manager
# MathJax 3, served from the book too, so formulas render with no network.
MATHJAX             := 3.2.2
MATHJAX_SHA256      := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX_DIR         := _static/vendor/mathjax

.PHONY: setup book test bench test-browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[book,test,bench]'
	touch $@

$(VENDOR)/embed.js:
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to fetch the ipywidgets HTML manager for the pages"; exit 1; }
	rm -rf _build/npm && mkdir -p _build/npm
	cd _build/npm && npm pack --silent @jupyter-widgets/html-manager@$(HTML_MANAGER) >/dev/null
	echo "$(HTML_MANAGER_SHA256)  _build/npm/jupyter-widgets-html-manager-$(HTML_MANAGER).tgz" | sha256sum --check --quiet -
	rm -rf $(VENDOR) $(VENDOR).part && mkdir -p $(VENDOR).part
	tar xzf _build/npm/jupyter-widgets-html-manager-$(HTML_MANAGER).tgz -C $(VENDOR).part --strip-components=2 package/dist
	rm -f $(VENDOR).part/*.map $(VENDOR).part/*amd.js  # the pages load embed.js (and its fonts) only
	mv $(VENDOR).part $(VENDOR)

# The CHTML build the pages load and the components it loads on demand; not the speech engine
# (sre, 4 MB) or the SVG output, which the pages never ask for.
$(MATHJAX_DIR)/tex-mml-chtml.js:
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to fetch MathJax for the pages"; exit 1; }
	rm -rf _build/npm-mathjax && mkdir -p _build/npm-mathjax
	cd _build/npm-mathjax && npm pack --silent mathjax@$(MATHJAX) >/dev/null
	echo "$(MATHJAX_SHA256)  _build/npm-mathjax/mathjax-$(MATHJAX).tgz" | sha256sum --check --quiet -
	rm -rf $(MATHJAX_DIR) $(MATHJAX_DIR).part && mkdir -p $(MATHJAX_DIR).part
	tar xzf _build/npm-mathjax/mathjax-$(MATHJAX).tgz -C $(MATHJAX_DIR).part --strip-components=2 \
	  package/es5/tex-mml-chtml.js package/es5/input package/es5/output/chtml package/es5/output/chtml.js \
	  package/es5/a11y package/es5/ui package/es5/adaptors package/es5/core.js package/es5/startup.js
	mv $(MATHJAX_DIR).part $(MATHJAX_DIR)

book: setup $(VENDOR)/embed.js $(MATHJAX_DIR)/tex-mml-chtml.js
	$(BIN)/jupyter-book build . --all --builder html -W --keep-going  # a failing cell fails the build
	@echo "The book is in _build/html/index.html"

test: setup
	$(BIN)/python -m pytest tests book --nbval --nbval-current-env --nbval-cell-timeout=900

# Debian's Chromium and chromedriver drive the pages (installed here when missing, as root).
test-browser: book
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -q chromium chromium-driver >/dev/null; \
	  else echo "install Debian's chromium and chromium-driver (sudo apt-get install chromium chromium-driver)"; exit 1; fi; }
	$(BIN)/python -m pytest tests/browser/browser_check.py -v -rA
	@echo "Screenshots of the interactive chapter: _build/browser/"

bench: setup
	$(BIN)/python benchmarks/nmf_speed.py --json

clean:
	rm -rf _build .pytest_cache _static/vendor
