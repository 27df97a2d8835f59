"""``chatgate serve``, ``chatgate token`` and ``chatgate check``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from chatgate import __version__, config, tokens

log = logging.getLogger("chatgate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatgate", description="A self-hosted Vertex AI Chat Completions API.")
    parser.add_argument("--version", action="version", version=f"chatgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (the embedded local model by default)")
    serve.add_argument("--config", help="a TOML config file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--no-auth", action="store_true", help="accept requests without credentials")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    token = commands.add_parser("token", help="print a short-lived bearer token this server accepts")
    token.add_argument("--config", help="a TOML config file (for auth.state_dir)")
    token.add_argument("--project", help="limit the token to one project (default: every project)")
    token.add_argument("--lifetime", type=int, default=3600, help="seconds until it expires (default 3600)")

    check = commands.add_parser("check", help="check that every configured model, credential and endpoint works")
    check.add_argument("--config", help="a TOML config file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags: dict[str, Any] = {}
    if args.command == "serve":
        server = {
            k: v for k, v in (("host", args.host), ("port", args.port), ("log_level", args.log_level)) if v is not None
        }
        if server:
            flags["server"] = server
        if args.no_auth:
            flags["auth"] = {"enabled": False}
    try:
        settings = config.load(args.config, overrides=flags)
    except config.ConfigError as exc:
        print(f"chatgate: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.command == "token":
        longest = settings.auth.max_token_lifetime
        if not 0 < args.lifetime <= longest:
            print(
                f"chatgate: --lifetime must be between 1 and {longest} seconds (auth.max_token_lifetime)",
                file=sys.stderr,
            )
            return 2
    try:
        if args.command == "token":
            secret = tokens.load_secret(config.state_dir(settings))
            print(tokens.mint(secret, project=args.project, lifetime=args.lifetime))
            return 0
        if args.command == "check":
            return check(settings)
        return serve(settings)
    except tokens.SecretError as exc:
        print(f"chatgate: unsafe token secret: {exc}", file=sys.stderr)
        return 2


def check(settings: config.Settings) -> int:
    """Print the table of checks; 1 if any failed."""
    import asyncio

    from chatgate import check as checks

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("chatgate.upstream").setLevel(logging.ERROR)  # a replica's failure is in the table
    rows = asyncio.run(checks.run(settings))
    print(checks.table(rows))
    return 1 if checks.failed(rows) else 0


def serve(settings: config.Settings) -> int:
    import uvicorn

    from chatgate.engines.local.models import ModelUnavailable
    from chatgate.front.app import build_app
    from chatgate.serving import uvicorn_config

    level = settings.server.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = build_app(settings)
    except ModelUnavailable as exc:
        print(f"chatgate: {exc}", file=sys.stderr)
        return 2
    host, port = settings.server.host, settings.server.port
    if not settings.auth.enabled:
        log.warning("authentication is OFF (--no-auth): anyone who can reach %s:%d can use it", host, port)
        if settings.server.allowed_hosts is None:
            log.warning(
                "only loopback Host names are served (localhost, 127.0.0.1, [::1]); list others in server.allowed_hosts"
            )
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    log.info("chatgate %s starting on %s", __version__, base)
    log.info("OpenAI base URL: %s/v1  (or %s/v1/projects/<project>/locations/<location>/endpoints/openapi)", base, base)
    if settings.auth.enabled:
        log.info("credentials: `Authorization: Bearer $(chatgate token)`")
    uvicorn.Server(
        uvicorn_config(
            app, settings.server, host=host, port=port, log_level=settings.server.log_level, timeout_graceful_shutdown=5
        )
    ).run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
