"""``chatgate serve`` and ``chatgate token``."""

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
        return serve(settings)
    except tokens.SecretError as exc:
        print(f"chatgate: unsafe token secret: {exc}", file=sys.stderr)
        return 2


def serve(settings: config.Settings) -> int:
    from chatgate.engines.local.models import ModelUnavailable
    from chatgate.front.app import build_app
    from chatgate.serving import Server, uvicorn_config

    level = settings.server.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO, and an upstream URL may carry a key.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
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
    server_config = uvicorn_config(app, settings.server, host=host, port=port, log_level=settings.server.log_level)
    # On SIGTERM the requests in flight get server.shutdown_timeout seconds, then end with an error.
    Server(
        server_config, on_shutdown=lambda: app.state.chatgate.deadlines.drain(settings.server.shutdown_timeout)
    ).run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
