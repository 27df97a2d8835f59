"""``chatgate serve`` tunes Python's garbage collector once it has started (``serving.tune_gc``).

Run in a child process: the tuning is process-wide and must not leak into the test run."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.live import cli_env

CHILD = """
import asyncio, gc, json
from chatgate import config
from chatgate.serving import Server, uvicorn_config

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

async def main():
    before = {"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    settings = config.load(None, environ={})
    server = Server(uvicorn_config(app, settings.server, host="127.0.0.1", port=0, log_level="error"), lambda: None)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    after = {"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    server.should_exit = True
    await serving
    print(json.dumps({"before": before, "after": after}))

asyncio.run(main())
"""


def test_serving_freezes_start_up_objects_and_collects_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], env=cli_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"]["frozen"] == 0 and seen["before"]["thresholds"] != [10_000, 20, 20]  # Python's own
    assert seen["after"]["thresholds"] == [10_000, 20, 20]
    assert seen["after"]["frozen"] > 10_000  # modules, the app: out of every collection
