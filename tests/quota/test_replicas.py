"""Two ``chatgate serve`` processes sharing one Redis (a real ``redis-server`` on loopback):
one limit for both under concurrent load, a revocation made once honoured by both, and Redis
killed in the middle and restarted under each failure policy. The servers relay to a stub
upstream, so no model is loaded."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from chatgate.limits.base import WINDOW
from tests.live import CliServer, cli_env, run_cli
from tests.quota.redis_server import RedisServer
from tests.upstream.servers import ROUTE, Upstream, openai_stub, wait_until

KEY = "replica-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


def config_file(
    tmp_path: Path,
    name: str,
    upstream: str,
    redis_url: str,
    *,
    rpm: int,
    on_error: str = "open",
    timeout: float = 0.5,
    concurrent: int | None = None,
    endpoint: str = "",
) -> Path:
    """``endpoint``: more settings of the endpoint, as TOML lines."""
    path = tmp_path / f"{name}.toml"
    at_once = "" if concurrent is None else f"concurrent = {concurrent}"
    path.write_text(f"""
[local]
enabled = false
[auth]
state_dir = "{tmp_path / "state"}"
api_keys = ["{KEY}"]
[endpoints.ep]
upstreams = ["{upstream}"]
{endpoint}
[limits.default]
requests_per_minute = {rpm}
{at_once}
[state]
redis_url = "{redis_url}"
on_error = "{on_error}"
timeout = {timeout}
""")
    return path


@contextlib.contextmanager
def replicas(
    tmp_path: Path,
    redis: RedisServer,
    *,
    rpm: int,
    policies: tuple[str, str] = ("open", "open"),
    timeout: float = 0.5,
) -> Iterator[tuple[CliServer, CliServer, Path]]:
    env = cli_env(HOME=str(tmp_path))
    with Upstream(openai_stub) as up, contextlib.ExitStack() as stack:
        confs = [
            config_file(tmp_path, f"r{i}", up.url, redis.url, rpm=rpm, on_error=policy, timeout=timeout)
            for i, policy in enumerate(policies)
        ]
        a, b = (stack.enter_context(CliServer("--config", str(conf), env=env)) for conf in confs)
        yield a, b, confs[0]


def chat(server: CliServer, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(server.url + ROUTE.format("ep") + "/chat/completions", json=CHAT, headers=headers, timeout=30)


def metric(server: CliServer, series: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return 0.0


def refuses(server: CliServer, headers: dict[str, str]) -> bool:
    return chat(server, headers).status_code == 401


ALLOWED = 'chatgate_quota_allowed_total{limit="requests_per_minute",scope="project"}'


def test_two_replicas_share_one_limit_under_concurrent_load(tmp_path: Path, redis_server: RedisServer) -> None:
    limit = 30
    # A Redis slower than the default 0.5 s (a busy machine) would be taken for gone and, with
    # on_error = "open", admit without counting: this test is about sharing, not failing.
    with replicas(tmp_path, redis_server, rpm=limit, timeout=10) as (a, b, _):
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda i: chat(a if i % 2 else b).status_code, range(120)))
        elapsed = time.monotonic() - started
        admitted = answers.count(200)
        assert answers.count(429) == len(answers) - admitted
        # A bucket of `limit` refills at `limit` per minute: over `elapsed` seconds at most
        # that much more was due. Two separate buckets would have admitted 2 * limit.
        refilled = int(elapsed * limit / WINDOW) + 1
        assert limit <= admitted <= limit + refilled, (admitted, elapsed)
        assert admitted < 2 * limit
        by_replica = [metric(a, ALLOWED), metric(b, ALLOWED)]
        assert sum(by_replica) == admitted and all(by_replica)  # both replicas admitted some


def test_back_to_back_requests_under_a_concurrency_limit_of_one(tmp_path: Path, redis_server: RedisServer) -> None:
    """A client that sends each request as soon as the last answer ended is never refused,
    neither by a concurrency quota of 1 (the slot is freed in Redis by a background round trip,
    sent as the answer goes out, before the next request's admission reaches it) nor by an
    endpoint that relays one request at a time with no queue. Hundreds of requests, and their
    log lines, through one ``chatgate serve``."""
    one_at_a_time = "max_concurrency = 1\nqueue_size = 0"
    with Upstream(openai_stub) as up:
        conf = config_file(
            tmp_path, "one", up.url, redis_server.url, rpm=100_000, timeout=10, concurrent=1, endpoint=one_at_a_time
        )
        with CliServer("--config", str(conf), env=cli_env(HOME=str(tmp_path))) as server, httpx.Client() as client:
            url = server.url + ROUTE.format("ep") + "/chat/completions"
            answers = [client.post(url, json=CHAT, headers=AUTH, timeout=10).status_code for _ in range(300)]
            for _ in range(100):
                with client.stream("POST", url, json={**CHAT, "stream": True}, headers=AUTH, timeout=10) as r:
                    assert r.read().rstrip().endswith(b"data: [DONE]")
                    answers.append(r.status_code)
            checked = metric(server, 'chatgate_quota_allowed_total{limit="concurrent",scope="project"}')
    assert answers == [200] * 400
    assert checked == 400  # each one went through the concurrency limit


def test_a_revocation_reaches_every_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_server, rpm=1000) as (a, b, conf):
        env = cli_env(HOME=str(tmp_path))
        token = run_cli("token", "--config", str(conf), env=env).stdout.strip()
        bearer = {"Authorization": f"Bearer {token}"}
        assert chat(a, bearer).status_code == 200 and chat(b, bearer).status_code == 200
        revoked = run_cli("token", "--config", str(conf), "--revoke", token, env=env)
        assert revoked.returncode == 0, revoked.stderr
        issued = time.monotonic()
        for server in (b, a):
            wait_until(functools.partial(refuses, server, bearer), "the revoked token refused")
        print(f"revocation honoured by both replicas after {time.monotonic() - issued:.2f} s")
        refused = chat(b, bearer)
        assert "revoked" in refused.json()["error"]["message"]
        # Nothing was written beside the secret: Redis holds the revocation.
        assert not (tmp_path / "state" / "revoked-tokens").exists()
        fresh = run_cli("token", "--config", str(conf), env=env).stdout.strip()
        assert chat(b, {"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_redis_killed_mid_run_then_restarted(tmp_path: Path, redis_server: RedisServer) -> None:
    limit = 5
    with replicas(tmp_path, redis_server, rpm=limit, policies=("open", "closed")) as (fail_open, fail_closed, _):
        assert [chat(fail_open).status_code for _ in range(limit + 1)] == [200] * limit + [429]
        assert chat(fail_closed).status_code == 429  # the same bucket, seen from the other replica

        redis_server.stop()
        assert [chat(fail_open).status_code for _ in range(3)] == [200] * 3  # served, unlimited
        closed = chat(fail_closed)
        assert closed.status_code == 503 and closed.headers["retry-after"] == "1"
        assert closed.json()["error"]["code"] == "quota_store_unavailable"
        assert metric(fail_open, "chatgate_quota_store_errors_total") >= 1
        assert httpx.get(fail_open.url + "/v1/projects/demo/quota", headers=AUTH).status_code == 503

        redis_server.start()  # empty: it kept nothing
        wait_until(lambda: chat(fail_closed).status_code == 200, "the fail-closed replica serving again")
        wait_until(
            lambda: httpx.get(fail_open.url + "/v1/projects/demo/quota", headers=AUTH).status_code == 200,
            "the fail-open replica reading the store again",
        )
        answers = [chat(fail_open).status_code for _ in range(limit + 1)]
        assert answers.count(429) >= 1 and answers.count(200) <= limit  # limits enforced again
