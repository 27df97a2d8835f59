"""Whether llama.cpp's extra CPU buffer types are safe on this machine, decided before serving.

llama.cpp puts weights in extra CPU buffer types when the CPU advertises the instructions for
them: AMX tiles, or layouts repacked for wider SIMD. Some machines advertise what they do not
allow (a virtual machine whose CPU reports AMX but that does not let a process use the tile
registers): llama.cpp then dies of a signal on the first decode, taking the server with it.

So before a model is loaded for serving, a child process loads it with the extra buffer types
and decodes once (``python -m chatgate.engines.local.probe MODEL.gguf``). If the child dies of
a signal, the model is served without them, with one warning. The verdict is cached in the
state directory, keyed by the llama.cpp build and the CPU, so later starts pay nothing.
``local.extra_buffers`` = ``on`` or ``off`` decides without a probe.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import chatgate
from chatgate.engines.local import llama

log = logging.getLogger("chatgate.local")

Mode = Literal["auto", "on", "off"]
CACHE_FILE = "extra-buffers.json"
# What serving without extra buffer types costs, said in every warning.
COST = "prompt processing and generation can be slower than this CPU allows; answers are the same"


@dataclass(frozen=True, slots=True)
class Verdict:
    extra_buffers: bool
    reason: str  # why, in a few words: "a probe decoded with them", "local.extra_buffers = off", ...
    cached: bool = False

    def __str__(self) -> str:
        return f"extra buffer types {'on' if self.extra_buffers else 'off'}: {self.reason}" + (
            " (cached)" if self.cached else ""
        )


def _child_command() -> list[str]:
    return [sys.executable, "-m", "chatgate.engines.local.probe"]


class Probe:
    """Decides, once per model file, whether to load it with extra buffer types.

    ``state_dir``: where verdicts are cached (None: only for this object's life).
    ``command``: the child program; the model's path is appended to it.
    """

    def __init__(
        self, state_dir: Path | None = None, *, command: Sequence[str] | None = None, timeout: float = 300.0
    ) -> None:
        self.cache = state_dir / CACHE_FILE if state_dir is not None else None
        self.command = list(command) if command is not None else _child_command()
        self.timeout = timeout
        self.runs = 0  # child processes started, by this object
        self._known: dict[str, Verdict] = {}
        self._lock = threading.Lock()

    def verdict(self, name: str, path: Path, mode: Mode = "auto") -> Verdict:
        """The verdict for model ``name`` at ``path``; on ``auto``, from the cache or a probe."""
        if mode != "auto":
            return Verdict(mode == "on", f"local.extra_buffers = {mode}")
        with self._lock:
            key = str(path.resolve())
            known = self._known.get(key) or self._cached(path)
            kept = known is not None and known.cached
            if known is None:
                known, kept = self._probe(name, path)
                if kept:
                    kept = self._store(path, known)
            self._known[key] = known
        if not known.extra_buffers:
            again = f" The verdict is cached in {self.cache}: delete it to probe again." if kept else ""
            log.warning(
                "model %s: serving it without llama.cpp's extra CPU buffer types (AMX, repacked weights): "
                "%s. The cost: %s.%s",
                name,
                known.reason,
                COST,
                again,
            )
        return known

    # --- the child ------------------------------------------------------------------------

    def _probe(self, name: str, path: Path) -> tuple[Verdict, bool]:
        """Run the child; (the verdict, whether it is worth caching)."""
        env = dict(os.environ)
        # The child runs this very chatgate, wherever it was imported from.
        source = str(Path(chatgate.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        log.info("model %s: checking llama.cpp's extra CPU buffer types in a child process", name)
        self.runs += 1
        try:
            done = subprocess.run(
                [*self.command, str(path)],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            return Verdict(False, f"the probe did not finish within {self.timeout:.0f} s"), False
        except OSError as exc:
            return Verdict(False, f"the probe could not start ({exc})"), False
        if done.returncode == 0:
            return Verdict(True, "a probe loaded the model with them and decoded"), True
        if done.returncode < 0:
            try:
                died = signal.Signals(-done.returncode).name
            except ValueError:
                died = f"signal {-done.returncode}"
            return Verdict(False, f"llama.cpp crashed ({died}) decoding with them on this CPU"), True
        last = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return Verdict(False, f"the probe failed (exit status {done.returncode}: {last[0][:300]})"), False

    # --- the cache ------------------------------------------------------------------------

    def _machine(self) -> dict[str, str]:
        return {"llama_cpp_python": llama.version(), "system_info": llama.system_info(), "cpu": llama.cpu()}

    def _read(self) -> dict[str, object]:
        if self.cache is None:
            return {}
        try:
            data = json.loads(self.cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self._machine().items()):
            return {}  # another llama.cpp build or another CPU: every verdict is stale
        return data

    def _cached(self, path: Path) -> Verdict | None:
        models = self._read().get("models")
        entry = models.get(str(path.resolve())) if isinstance(models, dict) else None
        if not isinstance(entry, dict) or entry.get("file") != _identity(path):
            return None
        return Verdict(bool(entry.get("extra_buffers")), str(entry.get("reason")), cached=True)

    def _store(self, path: Path, verdict: Verdict) -> bool:
        if self.cache is None:
            return False
        data = self._read() or self._machine()
        models = data.get("models")
        models = dict(models) if isinstance(models, dict) else {}
        models[str(path.resolve())] = {
            "file": _identity(path),
            "extra_buffers": verdict.extra_buffers,
            "reason": verdict.reason,
        }
        data = {**data, "models": models}
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache.with_name(f".{CACHE_FILE}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
            partial.replace(self.cache)
        except OSError as exc:
            log.warning("could not cache the extra buffer types verdict in %s: %s", self.cache, exc)
            return False
        return True


def _identity(path: Path) -> list[int]:
    """The model file as it is now: a replaced file is probed again."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def main(argv: Sequence[str]) -> int:
    """The child: load the model with extra buffer types and decode once. A crash is the
    answer; an exception is a failure to report."""
    [path] = argv
    llama.smoke(Path(path), extra_buffers=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
