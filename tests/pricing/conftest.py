"""Shared fixtures: the shipped catalog (loaded once) and a pricer over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelcost.pricing import Catalog, Pricer, PricingConfig

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def shipped() -> Catalog:
    return Catalog.load(PricingConfig())


@pytest.fixture
def pricer(shipped: Catalog) -> Pricer:
    return Pricer(shipped, PricingConfig())
