"""Continuous batching: one llama.cpp context per model, every running sequence in it.

A ``Scheduler`` thread owns the model's one context (one KV cache, a llama.cpp sequence id per
running generation) and steps it:

- sequences join between steps: each is placed in a free sequence id, with the longest prompt
  prefix already in the cache (that id's own from an earlier request, another sequence's, or a
  pinned prefix's saved state) reused instead of evaluated again;
- a step decodes the next token of every generating sequence in one ``llama_decode`` call (one
  pass over the weights for all of them) and samples each from its own logits with its own
  sampler chain; then it evaluates one chunk of each prompt still being read;
- finished or cancelled sequences leave; their cache stays, for the next request to reuse.

Reproducible answers. llama.cpp's numbers for a token depend on what else is in its decode
call (batch size picks the kernels). So prompts are evaluated on a fixed grid: chunks of
``CHUNK`` tokens aligned from position 0, each chunk decoded on its own, never with other
sequences' tokens. A prompt's KV state is then the same whatever else is running, and the cache
is reused only up to a chunk boundary of whole chunks evaluated that way (never generated
tokens, which were decoded one by one): the tokens after the reused part are split and
computed exactly as they would be cold. Each sequence has cache cells of its own (llama.cpp's
non-unified cache), so its tokens sit at the same cells whatever else the cache holds: the
attention sums depend on that too. A request alone on the server therefore gives the same
answer every time; under concurrency its prompt is still read identically, but its generated
tokens are decoded together with other sequences' and may differ in the last bits.

Generation code (``generation.py``) runs on its own worker thread and reads tokens from a
``Stream`` as it did from a private context; the scheduler steps once every running sequence
has asked for its next token (or after a short wait for a straggler).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatgate.engines.local.llama import BATCH, Batch, Context, Dry, LogitsProcessor, Sampler

log = logging.getLogger("chatgate.local")

# Prompts are evaluated in chunks of this many tokens, aligned from position 0 (see above):
# small enough that reusing a cached prefix loses little at its end and a long prompt holds
# the other sequences back one chunk at a time, large enough to keep prompt evaluation fast.
CHUNK = 64
# How long a step waits for a sequence whose worker has not asked for its next token yet,
# once the others have: as long as the last generation decode took (at least this), since
# stepping without it costs it a decode of its own next. A slow consumer does not hold
# everyone back for longer.
STRAGGLER = 0.005
_keys = itertools.count(1)  # pinned prefixes' ids, unique in the process


class Closed(Exception):
    """The model is closing: no more tokens."""


class Cancelled(Exception):
    """The generation's cancel flag is set: it stops."""


@dataclass
class Stats:
    """Counters for metrics, operators and tests (not timings)."""

    steps: int = 0  # generation decodes (all running sequences at once)
    chunks: int = 0  # prompt chunk decodes
    prompt_evaluated: int = 0  # prompt tokens decoded
    prompt_reused: int = 0  # prompt tokens taken from the cache instead
    widest: int = 0  # most sequences decoded in one generation step so far
    last_width: int = 0  # sequences in the last generation step


@dataclass(eq=False)
class _Pin:
    key: int
    tokens: list[int]  # the whole chunks of the prefix, as saved
    state: bytes


@dataclass(eq=False)
class _Seq:
    prompt: list[int] = field(repr=False)
    sampler: Sampler | None  # None: evaluate the prompt only (a pin)
    id: int = -1  # llama.cpp sequence id, once placed
    done: int = 0  # prompt tokens in the cache
    reused: int = 0  # of which taken from the cache
    pinned: int = 0  # of which covered by a pin
    pending: int | None = None  # the last sampled token, not yet decoded
    position: int = 0  # where ``pending`` goes
    ready: bool = True  # the worker waits for a token (a prompt needs no worker)
    ready_at: float = 0.0
    token: int | None = None  # handed to the worker
    finished: bool = False  # prompt-only: evaluated
    left: bool = False
    error: BaseException | None = None
    state: bytes | None = field(default=None, repr=False)  # prompt-only: the saved state
    cond: threading.Condition | None = field(default=None, repr=False)


class Scheduler:
    """Owns ``context`` (its ``sequences`` sequence ids) and the thread that decodes it."""

    def __init__(self, context: Context, name: str) -> None:
        self.context = context
        self.sequences = context.sequences
        self.stats = Stats()
        self._cond = threading.Condition()
        self._joining: list[_Seq] = []
        self._running: dict[int, _Seq] = {}
        # What each sequence id holds in the cache, and how many leading tokens of it are
        # whole grid chunks (reusable).
        self._cached: list[list[int]] = [[] for _ in range(self.sequences)]
        self._clean: list[int] = [0] * self.sequences
        self._pins: dict[int, _Pin] = {}
        self._closing = False
        self._patience = STRAGGLER  # see STRAGGLER
        self._thread = threading.Thread(target=self._loop, name=f"llama-{name}-batch", daemon=True)
        self._thread.start()

    # --- for workers ----------------------------------------------------------------------

    def stream(self, cancel: threading.Event) -> Stream:
        return Stream(self, cancel)

    def pin(self, tokens: list[int], cancel: threading.Event) -> tuple[int, int, int]:
        """Evaluate ``tokens`` (a prompt prefix) and keep its KV state: (key, tokens kept, bytes)."""
        whole = len(tokens) // CHUNK * CHUNK
        seq = _Seq(prompt=list(tokens[:whole]), sampler=None)
        if whole == 0:
            raise ValueError("a pinned prefix shorter than one chunk saves nothing")
        self._join(seq)
        try:
            self._wait(seq, cancel, lambda: seq.finished)
        finally:
            self._leave(seq)
        assert seq.state is not None
        key = next(_keys)
        with self._cond:
            self._pins[key] = _Pin(key, seq.prompt, seq.state)
        return key, whole, len(seq.state)

    def unpin(self, key: int) -> None:
        with self._cond:
            self._pins.pop(key, None)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _join(self, seq: _Seq) -> None:
        with self._cond:
            if self._closing:
                raise Closed("the model is closing")
            seq.cond = self._cond
            seq.ready_at = time.monotonic()
            self._joining.append(seq)
            self._cond.notify_all()

    def _leave(self, seq: _Seq) -> None:
        with self._cond:
            if seq.left:
                return
            seq.left = True
            if seq in self._joining:
                self._joining.remove(seq)
            self._cond.notify_all()

    def _wait(self, seq: _Seq, cancel: threading.Event, done: Any) -> None:
        with self._cond:
            while not done():
                if seq.error is not None:
                    raise seq.error
                if cancel.is_set():
                    raise Cancelled
                self._cond.wait(timeout=0.05)
            if seq.error is not None:
                raise seq.error

    def _next(self, seq: _Seq, cancel: threading.Event) -> int:
        """The worker asks for ``seq``'s next token."""
        with self._cond:
            seq.ready = True
            seq.ready_at = time.monotonic()
            self._cond.notify_all()
        self._wait(seq, cancel, lambda: seq.token is not None)
        with self._cond:
            token, seq.token = seq.token, None
        assert token is not None
        return token

    # --- the scheduler's thread -------------------------------------------------------------

    def _loop(self) -> None:
        batch = Batch(BATCH)
        try:
            while True:
                with self._cond:
                    if not self._until_step():
                        return
                    self._retire()
                    self._place()
                    generating = [s for _, s in sorted(self._running.items()) if s.ready and s.pending is not None]
                    reading = [s for _, s in sorted(self._running.items()) if s.done < len(s.prompt)]
                    for s in generating:
                        s.ready = False
                self._generate(batch, generating)
                for s in reading:
                    self._read(batch, s)
        except BaseException as exc:  # a llama.cpp failure: every sequence gets it
            log.exception("the batch scheduler failed")
            with self._cond:
                self._closing = True
                self._fail(exc)
        finally:
            with self._cond:
                self._fail(Closed("the model is closing"))
            batch.close()

    def _until_step(self) -> bool:
        """Wait (holding the lock) until there is work for a step; false when closing."""
        while not self._closing:
            if any(s.left for s in self._running.values()):
                return True
            if self._joining and len(self._running) < self.sequences:
                return True
            if any(s.done < len(s.prompt) for s in self._running.values()):
                return True
            ready = [s for s in self._running.values() if s.ready and s.pending is not None]
            waiting = [s for s in self._running.values() if not s.ready]
            if ready and not waiting:
                return True
            if ready and time.monotonic() - min(s.ready_at for s in ready) >= self._patience:
                return True
            self._cond.wait(timeout=self._patience if ready else None)
        return False

    def _fail(self, error: BaseException) -> None:
        for s in [*self._joining, *self._running.values()]:
            if s.error is None:
                s.error = error
        self._cond.notify_all()

    def _retire(self) -> None:
        for i, s in list(self._running.items()):
            if s.left:
                del self._running[i]
                if s.sampler is not None:
                    s.sampler.close()

    def _place(self) -> None:
        """Give each joining sequence a free sequence id and the longest reusable prefix."""
        while self._joining:
            free = [i for i in range(self.sequences) if i not in self._running]
            if not free:
                return  # admission keeps this from happening: wait for one to leave
            seq = self._joining.pop(0)
            prompt = seq.prompt
            # At least the last prompt token is evaluated (its logits give the first token; a
            # pinned prefix's last chunk ends with its state saved).
            limit = (len(prompt) - 1) // CHUNK * CHUNK

            def reusable(tokens: Sequence[int], clean: int, prompt: list[int] = prompt, limit: int = limit) -> int:
                return min(_common(prompt, tokens), clean, limit) // CHUNK * CHUNK

            # The free id whose own cache serves best; else the one holding the least (other
            # ids keep their prefixes for later requests). Among equals the lowest: llama.cpp
            # decodes a batch's sequences in one pass only when their ids are consecutive.
            own = {i: reusable(self._cached[i], self._clean[i]) for i in free}
            target = max(free, key=lambda i: (own[i], -self._clean[i] if own[i] == 0 else 0, -i))
            best, source = own[target], ("own", target)
            for i in range(self.sequences):
                if i != target:
                    found = reusable(self._cached[i], self._clean[i])
                    if found > best:
                        best, source = found, ("share", i)
            pinned = 0
            for pin in self._pins.values():
                found = reusable(pin.tokens, len(pin.tokens))
                pinned = max(pinned, found)
                if found > best:
                    best, source = found, ("pin", pin.key)
            context = self.context
            if source[0] == "own":
                context.drop(target, best)
            elif source[0] == "share":
                context.share(source[1], target, best)
            else:
                pin = self._pins[source[1]]
                if context.restore(target, pin.state):
                    context.drop(target, best)
                else:  # no room for it: evaluate instead
                    context.drop(target)
                    best = 0
            self._cached[target] = list(prompt[:best])
            self._clean[target] = best
            seq.id, seq.done, seq.reused, seq.pinned = target, best, best, min(pinned, best)
            self.stats.prompt_reused += best
            self._running[target] = seq

    def _generate(self, batch: Batch, sequences: list[_Seq]) -> None:
        """One decode for the pending token of every generating sequence, then a sample each."""
        if not sequences:
            return
        batch.clear()
        outputs = []
        for s in sequences:
            assert s.pending is not None
            outputs.append(batch.add(s.pending, s.position, s.id, logits=True))
        started = time.monotonic()
        self._decode(batch, sequences)
        self._patience = max(STRAGGLER, time.monotonic() - started)
        self.stats.steps += 1
        self.stats.last_width = len(sequences)
        self.stats.widest = max(self.stats.widest, len(sequences))
        for s, index in zip(sequences, outputs, strict=True):
            assert s.pending is not None
            self._cached[s.id].append(s.pending)
            self._hand(s, index, s.position + 1)

    def _read(self, batch: Batch, s: _Seq) -> None:
        """Decode the next grid chunk of ``s``'s prompt, on its own (see the module's docstring)."""
        start = s.done
        end = min(len(s.prompt), (start // CHUNK + 1) * CHUNK)
        batch.clear()
        last = -1
        for position in range(start, end):
            wanted = position == len(s.prompt) - 1 and s.sampler is not None
            index = batch.add(s.prompt[position], position, s.id, logits=wanted)
            if wanted:
                last = index
        self._decode(batch, [s])
        self.stats.chunks += 1
        self.stats.prompt_evaluated += end - start
        self._cached[s.id].extend(s.prompt[start:end])
        if end - start == CHUNK and self._clean[s.id] == start:
            self._clean[s.id] = end
        s.done = end
        if end < len(s.prompt):
            return
        if s.sampler is None:  # a prefix to keep
            state = self.context.save(s.id)
            with self._cond:
                s.state, s.finished = state, True
                self._cond.notify_all()
        else:
            self._hand(s, last, end)

    def _hand(self, s: _Seq, index: int, position: int) -> None:
        """Sample ``s``'s next token from output ``index`` and hand it to its worker."""
        assert s.sampler is not None
        try:
            token = s.sampler.sample(self.context, index)
        except BaseException as exc:  # the logits processor (a grammar) failed: this sequence only
            with self._cond:
                s.error = exc
                self._cond.notify_all()
            return
        with self._cond:
            s.pending, s.position, s.token = token, position, token
            self._cond.notify_all()

    def _decode(self, batch: Batch, sequences: list[_Seq]) -> None:
        code = self.context.decode(batch)
        if code == 1:
            # No room: drop the cache of every idle sequence id, then try once more.
            with self._cond:
                for i in range(self.sequences):
                    if i not in self._running:
                        self.context.drop(i)
                        self._cached[i], self._clean[i] = [], 0
            code = self.context.decode(batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed ({code}) for {batch.size} tokens of {len(sequences)} sequence(s)")


class Stream:
    """One worker's view of the model: what ``Generation`` generates with, as it did with a
    private context (tokenizing, the window, ``generate``), its tokens decoded in the
    scheduler's batches. One generation at a time: starting another ends the previous one."""

    def __init__(self, scheduler: Scheduler, cancel: threading.Event) -> None:
        self.scheduler = scheduler
        self.context = scheduler.context
        self.cancel = cancel
        self.seed = 0
        self._current: _Seq | None = None
        self.reused = 0  # prompt tokens the first generation took from the cache
        self.pinned = 0  # of which a pinned prefix held
        self._first = True

    @property
    def path(self) -> Path:
        return self.context.path

    @property
    def size(self) -> int:
        return self.context.size

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        return self.context.tokenize(text, add_bos=add_bos, special=special)

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return self.context.detokenize(tokens)

    def is_end(self, token: int) -> bool:
        return self.context.is_end(token)

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def generate(
        self,
        tokens: Sequence[int],
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        dry: Dry | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Iterator[int]:
        """Tokens sampled after ``tokens``, for as long as the caller asks (see
        ``Context.sampler`` for the chain)."""
        self.end()
        sampler = self.context.sampler(
            seed=self.seed,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_p=min_p,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            dry=dry,
            logits_processor=logits_processor,
        )
        seq = _Seq(prompt=list(tokens), sampler=sampler, ready=False)
        self._current = seq
        try:
            self.scheduler._join(seq)
        except BaseException:
            sampler.close()
            raise
        return self._tokens(seq)

    def _tokens(self, seq: _Seq) -> Iterator[int]:
        scheduler = self.scheduler
        try:
            # The first token comes when the prompt is read (the sequence is ready from the start).
            scheduler._wait(seq, self.cancel, lambda: seq.token is not None)
            with scheduler._cond:
                token, seq.token = seq.token, None
            if self._first:
                self.reused, self.pinned, self._first = seq.reused, seq.pinned, False
            assert token is not None
            yield token
            while True:
                yield scheduler._next(seq, self.cancel)
        finally:
            scheduler._leave(seq)

    def end(self) -> None:
        """End the current generation, if any (its cache stays for reuse)."""
        if self._current is not None:
            self.scheduler._leave(self._current)
            self._current = None


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
