"""Shared test set-up: a derandomized Hypothesis profile so CI cannot flake, and the shared fixtures."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests import helpers

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile("ci" if os.environ.get("CI") or not os.environ.get("SYMCOST_HYPOTHESIS_RANDOM") else "dev")


# Fixtures over tests/helpers.py: one CLI runner and one cache of built graphs for the whole session.


@pytest.fixture(scope="session")
def cli():
    """``cli("eval", "resnet50")``: symcost's command line in process; returns typer's Result."""
    return helpers.invoke


@pytest.fixture(scope="session")
def graph():
    """``graph("resnet50")``: a bundled architecture, parsed and built once per session."""
    return helpers.graph
