"""Fixtures for the host's packaging tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.venvs import PROJECTS, build


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution of the repository (the host, the five plugins, the meta
    package), wheel and sdist, built once per session from the checkout, offline."""
    out = tmp_path_factory.mktemp("dists")
    build(PROJECTS.values(), out)
    return out
