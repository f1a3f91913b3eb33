"""nbval (``pytest book --nbval``) runs every chapter except those the book shows without executing
them, listed once in ``_config.yml`` (``execute.exclude_patterns``)."""

import fnmatch
from pathlib import Path

import yaml

_CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())
NOT_EXECUTED = tuple(_CONFIG.get("execute", {}).get("exclude_patterns", ()))


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix == ".ipynb" and any(fnmatch.fnmatch(str(collection_path), p) for p in NOT_EXECUTED):
        return True
    return None
