"""Sockets for network-failure tests: a collector/server that accepts and never answers,
and a loopback port where nothing listens."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class HungCollector:
    """Accepts connections and never reads or answers (a collector stuck in GC, a
    firewall that lets SYN through): the exporter's requests block until they time out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture(name="hung")
def hung_fixture() -> Iterator[HungCollector]:
    """A :class:`HungCollector`, closed after the test (import it to use the fixture)."""
    collector = HungCollector()
    yield collector
    collector.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there, connecting is refused
