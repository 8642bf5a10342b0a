"""A lake of known traffic for the FOCUS export tests, and the FinOps Foundation's validator.

``focus_lake`` (one per test session) holds these calls, sent through the real pipeline, with
``pricing.discounts`` of 12.5% on OpenAI and 10% on Bedrock. Prices per 1M tokens are the
provider pages' (tests/reports/traffic.py ``PRICES``; Bedrock's regional Claude Sonnet 4.5 is
3.30 in, 16.50 out, 0.33 cache read, 4.125 cache write: bedrock.yaml's source page):

* ``A``, ``D`` at 10:05 and 10:35, ``E`` at 14:00 on 2026-11-03: gpt-4o through OpenAI, team a,
  feature chat, tenant t1; 3,000 input of which 1,000 cache reads, 400 output.
* ``B`` at 10:10: claude-sonnet-4-5 through Anthropic, team a, feature chat: 3,000 input of
  which 500 cache reads and 1,500 cache writes, 400 output of which 100 reasoning.
* ``C`` at 12:00: Claude Sonnet 4.5 through Amazon Bedrock, team b, feature search,
  environment staging: 2,000 input, 100 output.
* ``U`` at 16:00: a model no catalog entry prices (provider ``acme``, model ``acme-chat``):
  1,200 input, 300 output, kept at cost 0.
* two calls just outside November (2026-10-31T23:59:59Z and 2026-12-01T00:00:00Z).

The validator (``focus-validator`` 1.0.0) pins numpy<2, so it gets a virtual environment of
its own, from the ``focus-validator`` extra in pyproject.toml, kept under the system temporary
directory between runs; the tests run its command line in a subprocess.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from otelcost.config import Config
from tests.reports.traffic import Call, build_lake

REPO = Path(__file__).parent.parent.parent
T0 = datetime(2026, 11, 3, 10, 5, tzinfo=UTC)
DISCOUNTS = [{"provider": "openai", "percent": "12.5"}, {"provider": "aws.bedrock", "percent": "10"}]
BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def gpt_call(ts: datetime) -> Call:
    return Call(
        ts=ts,
        service="assistant",
        team="a",
        feature="chat",
        model="gpt-4o",
        input_tokens=3_000,
        cache_read_tokens=1_000,
        output_tokens=400,
        tenant="t1",
    )


def known_calls() -> list[Call]:
    claude = Call(
        ts=T0 + timedelta(minutes=5),
        service="assistant",
        team="a",
        feature="chat",
        model="claude-sonnet-4-5",
        input_tokens=3_000,
        cache_read_tokens=500,
        output_tokens=400,
        attributes=(
            ("gen_ai.usage.cache_creation.input_tokens", 1_500),
            ("gen_ai.usage.reasoning.output_tokens", 100),
        ),
    )
    bedrock = Call(
        ts=datetime(2026, 11, 3, 12, tzinfo=UTC),
        service="search-api",
        team="b",
        feature="search",
        model="claude-sonnet-4-5",
        input_tokens=2_000,
        output_tokens=100,
        environment="staging",
        attributes=(
            ("gen_ai.provider.name", "aws.bedrock"),
            ("gen_ai.request.model", BEDROCK_MODEL),
            ("gen_ai.response.model", BEDROCK_MODEL),
        ),
    )
    unpriced = Call(
        ts=datetime(2026, 11, 3, 16, tzinfo=UTC),
        service="assistant",
        team="a",
        feature="chat",
        model="gpt-4o-mini",
        input_tokens=1_200,
        output_tokens=300,
        attributes=(
            ("gen_ai.provider.name", "acme"),
            ("gen_ai.request.model", "acme-chat"),
            ("gen_ai.response.model", "acme-chat"),
        ),
    )
    outside = [
        gpt_call(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)),
        gpt_call(datetime(2026, 12, 1, tzinfo=UTC)),
    ]
    return [
        gpt_call(T0),
        claude,
        bedrock,
        gpt_call(T0 + timedelta(minutes=30)),
        gpt_call(datetime(2026, 11, 3, 14, tzinfo=UTC)),
        unpriced,
        *outside,
    ]


@dataclass(frozen=True)
class Lake:
    config: Config
    config_file: Path


def write_config(path: Path, data_dir: Path, discounts: list[dict[str, str]]) -> Path:
    path.write_text(yaml.safe_dump({"data_dir": str(data_dir), "pricing": {"discounts": discounts}}))
    return path


@pytest.fixture(scope="session")
def focus_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("focus-lake")
    config = build_lake(root / "data", known_calls(), pricing={"discounts": DISCOUNTS})
    return Lake(config, write_config(root / "otelcost.yaml", root / "data", DISCOUNTS))


def _validator_pins() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins: list[str] = project["project"]["optional-dependencies"]["focus-validator"]
    return pins


@dataclass(frozen=True)
class Validator:
    """The focus-validator command line in its own venv; ``run`` answers its console report."""

    executable: Path
    site_packages: Path

    def run(self, data_file: Path, version: str, override_file: Path | None = None) -> str:
        args = [str(self.executable), "--data-file", str(data_file), "--validate-version", version]
        if override_file is not None:
            args += ["--override-file", str(override_file)]
        # It reads its currency list from a path relative to the working directory.
        result = subprocess.run(
            args, cwd=self.site_packages, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


@pytest.fixture(scope="session")
def focus_validator() -> Iterator[Validator]:
    pins = _validator_pins()
    digest = hashlib.sha256("\n".join([sys.version, *pins]).encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"otelcost-focus-validator-{digest}"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "focus-validator").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *pins],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert install.returncode == 0, f"cannot install {pins}: {install.stdout}{install.stderr}"
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    yield Validator(venv / "bin" / "focus-validator", Path(site))
