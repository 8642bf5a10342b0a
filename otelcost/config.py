"""The configuration of otelcost: one pydantic model, loaded from YAML, environment and flags.

Precedence, lowest to highest: defaults here < the YAML file (``--config``) < ``OTELCOST_*``
environment variables < command-line flags. Nested keys use ``__`` in environment variable names:
``lake.flush_interval`` is ``OTELCOST_LAKE__FLUSH_INTERVAL``. Environment parsing is done by
pydantic-settings (so lists and maps can be given as JSON); everything is validated by this one
model, and an invalid value fails before anything starts with a message that names the dotted key.

Each section model lives beside the code it configures (``otelcost/<package>/config.py``) and
forbids unknown keys, so a typo (``recevier:``) is an error, not a silently
ignored setting. ``docs/configuration.md`` documents every field; a test keeps it complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from otelcost.auth.config import AuthConfig
from otelcost.budgets.config import BudgetConfig, BudgetingConfig
from otelcost.budgets.windows import load_zone, parse_window
from otelcost.errors import ConfigError
from otelcost.lake.config import LakeConfig
from otelcost.lake.location import is_s3_url
from otelcost.normalize.config import AttributionConfig
from otelcost.policy.config import ApiConfig
from otelcost.pricing.config import PricingConfig
from otelcost.receiver.config import GrpcReceiverConfig, HttpReceiverConfig, ReceiverConfig
from otelcost.reports.base import ReportContext
from otelcost.reports.config import ReportsConfig
from otelcost.settle.config import SettleConfig
from otelcost.spool.config import SpoolConfig

__all__ = [
    "DEFAULT_DATA_DIR",
    "ENV_PREFIX",
    "Config",
    "GrpcReceiverConfig",
    "HttpReceiverConfig",
    "LakeConfig",
    "ReceiverConfig",
    "format_validation_error",
    "load_config",
    "report_context",
]

ENV_PREFIX: Final = "OTELCOST_"
DEFAULT_DATA_DIR: Final = Path("otelcost-data")


class Config(BaseSettings):
    """The whole configuration of an otelcost pipeline."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Lake and state live here.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    receiver: ReceiverConfig = ReceiverConfig()
    lake: LakeConfig = LakeConfig()
    spool: SpoolConfig = SpoolConfig()
    attribution: AttributionConfig = AttributionConfig()
    settle: SettleConfig = SettleConfig()
    pricing: PricingConfig = PricingConfig()
    budgets: list[BudgetConfig] = Field(default_factory=list, description="Spend budgets (docs/budgets.md).")
    budgeting: BudgetingConfig = BudgetingConfig()
    api: ApiConfig = ApiConfig()
    auth: AuthConfig = AuthConfig()
    reports: ReportsConfig = ReportsConfig()

    @property
    def lake_dir(self) -> Path:
        """``lake.root`` when set (shared by several writers), else ``<data_dir>/lake``."""
        if self.lake.root is not None and is_s3_url(self.lake.root):
            raise ConfigError(
                f"lake.root is {self.lake.root}: only otelcost sql, lake compact and lake retention work "
                "on an s3:// lake so far (issue 17); this needs a local or mounted lake.root"
            )
        return Path(self.lake.root) if self.lake.root is not None else self.data_dir / "lake"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def budgets_dir(self) -> Path:
        return self.data_dir / "budgets"

    @property
    def statements_dir(self) -> Path:
        """Closed chargeback statements (``otelcost report chargeback --close``)."""
        return self.data_dir / "statements"

    @model_validator(mode="after")
    def _unique_budget_names(self) -> Config:
        names = [budget.name for budget in self.budgets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"budgets: duplicate budget name {duplicates[0]!r}")
        return self

    @model_validator(mode="after")
    def _retention_keeps_budget_windows(self) -> Config:
        # The budgets' restart rebuild reads the open window back from the lake: a retention
        # shorter than a window would drop spend that still counts, and a restart would
        # undercount it. One more day because retention drops whole UTC days.
        retention = self.lake.retention
        if retention is None:
            return self
        for budget in self.budgets:
            needed = parse_window(budget.window, load_zone("UTC")).longest + timedelta(days=1)
            if retention < needed:
                days = math.ceil(needed / timedelta(days=1))
                raise ValueError(
                    f"lake.retention: budget {budget.name!r} counts a {budget.window} window, so "
                    f"the lake must keep at least {days}d (a restart rebuilds its spend from the lake)"
                )
        return self


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _dotted_path(loc: tuple[int | str, ...]) -> str:
    """``("budgets", 0, "window")`` -> ``budgets[0].window``, as the key reads in YAML."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(error: ValidationError, *, source: str | None = None) -> str:
    """One line per problem, each naming the dotted key: ``lake.flush_interval: must be ...``."""
    lines = []
    for problem in error.errors():
        loc = _dotted_path(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{loc}: {message}")
    prefix = f"invalid configuration in {source}" if source else "invalid configuration"
    return prefix + ":\n  " + "\n  ".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load_config(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective configuration; raise ConfigError naming every invalid key.

    ``overrides`` holds command-line flags as a nested mapping (``{"lake": {...}}``); ``environ``
    defaults to ``os.environ``. Relative paths in a YAML file are resolved against its folder.
    """
    layers: list[Mapping[str, Any]] = []
    source = None
    if path is not None:
        source = str(path)
        layers.append(_resolve_relative_paths(_read_yaml(Path(path)), Path(path).parent))
    env = dict(os.environ if environ is None else environ)
    try:
        env_layer = _read_env(env)
    except Exception as exc:  # pydantic-settings raises SettingsError on undecodable JSON
        raise ConfigError(f"invalid OTELCOST_* environment variable: {exc}") from exc
    layers.append(env_layer)
    if overrides:
        layers.append(overrides)
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _deep_merge(merged, layer)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=source)) from exc


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    relevant = {k: v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
    unknown = sorted(
        k for k in relevant if k.upper()[len(ENV_PREFIX) :].split("__")[0].lower() not in Config.model_fields
    )
    if unknown:
        raise ConfigError(
            f"unknown environment variable {unknown[0]} (no such key: see docs/configuration.md)"
        )
    source = EnvSettingsSource(Config, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__")
    source.env_vars = {k.lower(): v for k, v in relevant.items()}
    return source()


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolve(value: Any) -> Any:
        return str(base / value) if isinstance(value, str) and not Path(value).is_absolute() else value

    pricing = data.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("catalogs"), list):
        pricing["catalogs"] = [resolve(p) for p in pricing["catalogs"]]
    ownership = (
        (data.get("attribution") or {}).get("ownership")
        if isinstance(data.get("attribution"), dict)
        else None
    )
    if isinstance(ownership, dict) and ownership.get("file"):
        ownership["file"] = resolve(ownership["file"])
    lake = data.get("lake")
    root = lake.get("root") if isinstance(lake, dict) else None
    if isinstance(lake, dict) and isinstance(root, str) and root.strip() and "://" not in root:
        lake["root"] = resolve(root)
    auth = data.get("auth")
    if isinstance(auth, dict) and auth.get("keys_file"):
        auth["keys_file"] = resolve(auth["keys_file"])
    receiver = data.get("receiver")
    if not isinstance(receiver, dict):
        receiver = {}
    for listener in (receiver.get("grpc"), receiver.get("http"), data.get("api")):
        tls = listener.get("tls") if isinstance(listener, dict) else None
        if isinstance(tls, dict):
            for key in ("cert_file", "key_file", "client_ca_file"):
                if tls.get(key):
                    tls[key] = resolve(tls[key])
    return data


def report_context(config: Config, *, timeout: float | None = None) -> ReportContext:
    """What the reports read of ``config``: the lake, the ``reports:`` section, the budgets and
    the pricing (``otelcost report`` and ``GET /v1/reports`` both build theirs here)."""
    return ReportContext(
        lake_dir=config.lake_dir,
        config=config.reports,
        budgets=tuple(config.budgets),
        pricing=config.pricing,
        statements_dir=config.statements_dir,
        timeout=timeout,
    )
