"""Small Sphinx fixes for the built book, each found by the browser test (tests/browser):

* sphinx-thebe registers its inline configuration script twice under jupyter-book 1, which throws
  "Identifier 'THEBE_JS_URL' has already been declared" in every page, and myst-nb adds the widget
  manager twice on a page with widgets: scripts are de-duplicated, the manager kept where there are
  widgets only;
* an empty ``default_mode`` makes pydata-sphinx-theme log "Got invalid theme mode": light is the
  default (the reader's own choice, kept in localStorage, still wins);
* the ipywidgets HTML manager calls MathJax 2's ``MathJax.Hub.Queue`` and the book loads MathJax 3:
  ``_static/mathjax2_shim.js``, loaded before the manager, bridges the two;
* jupyter-book 1 adds every ``.js`` file under ``_static`` to every page, so MathJax's own
  components (``core.js``, ``startup.js``, ...), which it loads on demand, ran a second time
  ("Cannot set property Package", "State CONTEXT_MENU already exists"): the vendored MathJax
  folder is taken out of that list, and MathJax is loaded once, from ``mathjax_path``.
"""

_VENDORED_MATHJAX = "vendor/mathjax/"


def _light_by_default(app, config):
    config.html_context.setdefault("default_mode", "light")


def _mathjax_once(app, config):
    def vendored(entry):
        name = entry[0] if isinstance(entry, (tuple, list)) else entry
        return str(name).startswith(_VENDORED_MATHJAX)

    config.html_js_files[:] = [js for js in config.html_js_files if not vendored(js)]
    config.html_css_files[:] = [css for css in config.html_css_files if not vendored(css)]


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files", [])
    has_widgets = any(
        getattr(js, "attributes", {}).get("type") == "application/vnd.jupyter.widget-state+json" for js in scripts
    )
    last = {}  # a file added twice is loaded once, at its latest position (myst-nb adds its own per page)
    for js in scripts:
        if getattr(js, "filename", None):
            if js.filename.endswith("html-manager/embed.js") and not has_widgets:
                continue  # 1.9 MB of widget manager only where there are widgets
            if js.filename not in last or js.priority >= last[js.filename].priority:
                last[js.filename] = js
    seen, unique = set(), []
    for js in scripts:
        name = getattr(js, "filename", None)
        if name:
            if last.get(name) is js:
                unique.append(js)
            continue
        # Inline scripts: the copies differ only in an empty filename given as None or "".
        key = tuple(sorted(getattr(js, "attributes", {}).items()))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"][:] = unique  # in place: the builder renders this very list


def setup(app):
    app.connect("config-inited", _light_by_default)
    app.connect("config-inited", _mathjax_once)
    app.add_js_file("mathjax2_shim.js", priority=700)  # before the widget manager (800)
    # After myst-nb adds a page's own scripts (priority 500).
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

