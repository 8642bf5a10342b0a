"""``otelcost doctor``: check a running deployment and print what to fix.

The configuration (``-c``, ``--data-dir``, ``OTELCOST_*``) says where the deployment listens and
where its data directory is; ``--api`` and ``--otlp-grpc``/``--otlp-http`` override the addresses
when the doctor runs elsewhere (another pod, a laptop with a port-forward). Exit status 1 when
any check fails, 0 otherwise (warnings included). The checks live in ``otelcost/doctor/``.

With ``api.tls`` the API is read over HTTPS, trusting the system's CAs and the configured
``api.tls.cert_file`` itself; ``--ca-file`` trusts a CA bundle instead, ``--client-cert`` and
``--client-key`` answer an API that asks for a client certificate (docs/security.md).
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from pathlib import Path

import click

from otelcost.cli.common import config_options, load_cli_config, otelcost_errors
from otelcost.config import Config
from otelcost.configtypes import parse_listen
from otelcost.doctor import CheckResult, Limits, Status, Target, run_checks, worst
from otelcost.doctor.model import Endpoint
from otelcost.doctor.probe import api_ssl_context

__all__ = ["COMMANDS", "doctor"]

_ANY_HOST = frozenset({"0.0.0.0", "::", ""})


def _endpoint(value: str, option: str) -> Endpoint:
    try:
        host, port = parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return Endpoint(host, port)


def _reachable_host(listen_host: str, fallback: str) -> str:
    """A wildcard listen address is reached through the API's host (or loopback)."""
    return fallback if listen_host in _ANY_HOST else listen_host


def build_target(
    config: Config,
    *,
    api: str | None,
    otlp_grpc: str | None,
    otlp_http: str | None,
    use_data_dir: bool,
    api_tls: ssl.SSLContext | None = None,
) -> Target:
    if api is None:
        host, port = parse_listen(config.api.listen)
        scheme = "https" if config.api.tls is not None else "http"
        api = f"{scheme}://{_reachable_host(host, '127.0.0.1')}:{port}"
    parsed = urllib.parse.urlsplit(api)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise click.BadParameter(f"expected http://HOST:PORT, got {api!r}", param_hint="'--api'")
    api_host = parsed.hostname
    if parsed.scheme == "https" and api_tls is None:
        api_tls = api_ssl_context(served_cert=config.api.tls.cert_file if config.api.tls else None)

    def receiver(override: str | None, enabled: bool, listen: str, option: str) -> Endpoint | None:
        if override is not None:
            return _endpoint(override, option)
        if not enabled:
            return None
        host, port = parse_listen(listen)
        return Endpoint(_reachable_host(host, api_host), port)

    return Target(
        api_url=api.rstrip("/"),
        otlp_grpc=receiver(
            otlp_grpc, config.receiver.grpc.enabled, config.receiver.grpc.listen, "'--otlp-grpc'"
        ),
        otlp_http=receiver(
            otlp_http, config.receiver.http.enabled, config.receiver.http.listen, "'--otlp-http'"
        ),
        data_dir=config.data_dir if use_data_dir else None,
        lake_dir=config.lake_dir if use_data_dir else None,
        pricing=config.pricing,
        spool_max_size=config.spool.max_size if config.spool.enabled else None,
        api_tls=api_tls if parsed.scheme == "https" else None,
    )


def _print_text(results: list[CheckResult]) -> None:
    width = max(len(r.name) for r in results)
    for result in results:
        click.echo(f"{result.status.value:<4}  {result.name:<{width}}  {result.message}")
        if result.fix:
            click.echo(f"{'':<4}  {'':<{width}}  fix: {result.fix}")


@click.command("doctor")
@config_options
@click.option(
    "--api",
    default=None,
    metavar="URL",
    help="API listener, http(s)://HOST:PORT. Default: from api.listen (https with api.tls).",
)
@click.option(
    "--otlp-grpc",
    default=None,
    metavar="HOST:PORT",
    help="OTLP/gRPC endpoint. Default: receiver.grpc.listen.",
)
@click.option(
    "--otlp-http",
    default=None,
    metavar="HOST:PORT",
    help="OTLP/HTTP endpoint. Default: receiver.http.listen.",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle to check an HTTPS API's certificate with. Default: the system's CAs and "
    "api.tls.cert_file.",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate for an API with api.tls.client_ca_file (mTLS).",
)
@click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --client-cert.",
)
@click.option(
    "--no-files",
    is_flag=True,
    help="Only the network checks: the data directory is not visible from here.",
)
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds per probe."
)
@click.option(
    "--catalog-max-age-days",
    type=click.IntRange(min=0),
    default=90,
    show_default=True,
    help="Warn when a provider's prices were read longer ago.",
)
@click.option(
    "--max-lake-lag",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds: fail when rows wait and the newest lake file is older.",
)
@click.option(
    "--max-clock-skew",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds: warn when a service's spans arrive this long after (or before) they end.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds of lake rows (by received_at) the unpriced and clock-skew checks read.",
)
def doctor(
    *,
    config_path: Path | None,
    data_dir: Path | None,
    api: str | None,
    otlp_grpc: str | None,
    otlp_http: str | None,
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    no_files: bool,
    fmt: str,
    timeout: float,
    catalog_max_age_days: int,
    max_lake_lag: float,
    max_clock_skew: float,
    window: float,
) -> None:
    """Check a running deployment: ports, readiness, spool, disk, lake, catalog, unpriced
    models, clock skew. Each check prints ok / warn / fail and what to do; exit 1 on a failure."""
    config = load_cli_config(config_path, data_dir)
    if (client_key is None) != (client_cert is None):
        raise click.UsageError("--client-cert and --client-key go together")
    api_tls = None
    if ca_file is not None or client_cert is not None:
        try:
            api_tls = api_ssl_context(
                ca_file=ca_file,
                served_cert=config.api.tls.cert_file if config.api.tls else None,
                client_cert=client_cert,
                client_key=client_key,
            )
        except (OSError, ssl.SSLError) as exc:
            raise click.UsageError(f"cannot use --ca-file/--client-cert/--client-key: {exc}") from exc
    with otelcost_errors():  # an s3:// lake.root has no lake directory to check yet
        target = build_target(
            config,
            api=api,
            otlp_grpc=otlp_grpc,
            otlp_http=otlp_http,
            use_data_dir=not no_files,
            api_tls=api_tls,
        )
    limits = Limits(
        timeout_seconds=timeout,
        catalog_max_age_days=catalog_max_age_days,
        lake_max_lag_seconds=max_lake_lag,
        clock_max_skew_seconds=max_clock_skew,
        window_seconds=window,
    )
    results = run_checks(target, limits)
    overall = worst(results)
    if fmt == "json":
        click.echo(json.dumps({"status": overall.value, "checks": [r.as_json() for r in results]}, indent=2))
    else:
        _print_text(results)
    if overall is Status.FAIL:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [doctor]
