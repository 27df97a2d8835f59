"""Slow and greedy clients: a slowloris sending its head a byte at a time is cut off while
other requests are served; a body that trickles in gets a 408; an oversized head a 431;
connections beyond the limit a 503. The deadlines come from ``[server]``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.conftest import gateway
from tests.live import LiveServer

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Pad: "


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with gateway(tmp_path, server={"header_timeout": 0.5, "body_timeout": 0.5, "max_header_bytes": 4096}) as live:
        yield live


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(30)  # only keeps a broken test from hanging
    return sock


def test_a_slowloris_is_cut_off_while_others_are_served(server: LiveServer) -> None:
    slow = [connect(server) for _ in range(5)]
    for sock in slow:
        sock.sendall(HEAD[:10])
    served = 0
    try:
        for sock in slow:
            sock.sendall(HEAD[10:20])
        for _ in range(10):  # while the slow heads are open, others get answers
            assert httpx.get(server.url + "/healthz").status_code == 200
            served += 1
        for sock in slow:
            assert _hung_up(sock)
    finally:
        for sock in slow:
            sock.close()
    assert served == 10
    assert httpx.get(server.url + "/healthz").status_code == 200


def _hung_up(sock: socket.socket) -> bool:
    """Trickle the head a byte at a time (well under max_header_bytes) until the server closes
    the connection; without a head deadline the trickle ends and the read times out."""
    try:
        for byte in HEAD[20:] + b"x" * 1000:
            sock.sendall(bytes([byte]))
            time.sleep(0.02)
    except (ConnectionResetError, BrokenPipeError):
        return True
    sock.settimeout(30)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_a_trickling_body_gets_a_408(server: LiveServer) -> None:
    sock = connect(server)
    try:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"messages": '
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "closed without an answer"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
    finally:
        sock.close()
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_an_oversized_head_gets_a_431(server: LiveServer) -> None:
    sock = connect(server)
    try:
        sock.sendall(HEAD + b"x" * 8192)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431 "), answer
    finally:
        sock.close()
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_idle_keep_alive_connections_are_closed(tmp_path: Path) -> None:
    with gateway(tmp_path, server={"keep_alive_timeout": 0.5}) as server:
        sock = connect(server)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                answer += sock.recv(4096)
            assert sock.recv(1024) == b""  # closed by the server once idle
        finally:
            sock.close()


def test_connections_beyond_the_limit_get_a_503(tmp_path: Path) -> None:
    with gateway(tmp_path, server={"max_connections": 2}) as server:
        held = [connect(server) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(HEAD[:10])
            response = httpx.get(server.url + "/healthz")
            assert response.status_code == 503
        finally:
            for sock in held:
                sock.close()
