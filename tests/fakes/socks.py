"""A minimal SOCKS5 proxy on 127.0.0.1: no authentication, CONNECT only, recording where it connected."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

from bench.floors import pipe

_ADDRESS_LENGTHS = {1: 4, 4: 16}  # IPv4, IPv6; 3 is a host name with its length first
_FAMILIES = {1: socket.AF_INET, 4: socket.AF_INET6}


@dataclass
class SocksProxy:
    server: asyncio.Server
    port: int
    targets: list[tuple[str, int]]  # (host, port) of each connection made
    tasks: set[asyncio.Task[Any]]  # the connections being served

    async def aclose(self) -> None:
        """Stop listening and end every connection (before the test's loop closes)."""
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def start_socks_proxy() -> SocksProxy:
    """Listen on an unused loopback port in the running loop."""
    targets: list[tuple[str, int]] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await _serve(reader, writer, targets)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return SocksProxy(server, server.sockets[0].getsockname()[1], targets, tasks)


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, targets: list[tuple[str, int]]
) -> None:
    try:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x00")
        _, command, _, kind = await reader.readexactly(4)
        if kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            host = socket.inet_ntop(_FAMILIES[kind], await reader.readexactly(_ADDRESS_LENGTHS[kind]))
        port = int.from_bytes(await reader.readexactly(2), "big")
        if command != 1:
            writer.write(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        targets.append((host, port))
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
    except (asyncio.IncompleteReadError, ConnectionError, KeyError):
        pass
    finally:
        writer.close()

