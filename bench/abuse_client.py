#!/usr/bin/env python3
"""Hostile LAN device for bench/abuse.sh: one attack of the abuse run, on loopback only.

    abuse_client.py MODE --port P [--count N] [--hold S] [--source-base B]

Modes (no hub token unless said):
  ws_preauth     N WebSocket upgrades, each sending ~1 MiB of messages before `auth`
  ws_never_login N WebSocket upgrades that never send `auth`, held --hold seconds
  idle           N idle TCP connections held --hold seconds
  tokenless      N connections each sending GET /api/ without a token every 40 s for --hold s
  zha_permit     N x POST /_dinodia/zha/permit with a ~1 MiB body, a wrong token
  wrong_tokens   N wrong tokens on one connection (a new one whenever the agent closes it),
                 for at most --hold seconds

Connections come from loopback source addresses 127.<B>.x.y, 50 per address (under the
per-address limit, as a device with many IPv6 addresses would spread them), so the total limit
is what holds; a process holds at most
what its descriptor limit allows (bench/abuse.sh starts several). Prints one JSON line.
"""
import argparse
import asyncio
import json
import os
import resource
import time

WRONG = "wrong-hub-token-abuse"


def source(base, i):
    n = i // 50
    return f"127.{base}.{n // 250}.{n % 250 + 2}"


async def connect(port, base, i):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source(base, i), 0))


def ws_frame(payload: bytes) -> bytes:
    # A masked text frame with a zero mask key (valid, and the bytes stay as they are).
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


UPGRADE = (
    "GET /api/websocket HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def ws_attack(port, base, i, stats, preauth_bytes, hold):
    try:
        reader, writer = await connect(port, base, i)
        writer.write(UPGRADE.encode())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
        stats["upgraded"] += 1
        chunk = json.dumps({"type": "ping", "id": 1, "pad": "x" * 65000}).encode()
        sent = 0
        while sent < preauth_bytes:
            writer.write(ws_frame(chunk))
            sent += len(chunk)
            await asyncio.wait_for(writer.drain(), 15)
        stats["preauth_bytes"] += sent
        await asyncio.sleep(hold)
        writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats["failed"] += 1


async def idle(port, base, i, stats, hold):
    try:
        reader, writer = await connect(port, base, i)
        stats["connected"] += 1
        try:
            data = await asyncio.wait_for(reader.read(1), hold)
            if not data:
                stats["closed_by_agent"] += 1
        except asyncio.TimeoutError:
            stats["still_open"] += 1
        writer.close()
    except OSError:
        stats["failed"] += 1


async def tokenless(port, base, i, stats, hold):
    end = time.monotonic() + hold
    try:
        reader, writer = await connect(port, base, i)
        stats["connected"] += 1
        while time.monotonic() < end:
            writer.write(b"GET /api/ HTTP/1.1\r\nHost: hub\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
            await reader.readexactly(length[0] if length else 0)
            stats["answers"] += 1
            data = b""
            try:
                data = await asyncio.wait_for(reader.read(1), min(40, max(0.1, end - time.monotonic())))
                if not data:
                    stats["closed_by_agent"] += 1
                    return
            except asyncio.TimeoutError:
                pass
        stats["still_open"] += 1
        writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats["closed_by_agent"] += 1


async def zha_permit(port, base, i, stats):
    body = b"{" + b'"x":"' + b"a" * (1024 * 1024) + b'"}'
    try:
        reader, writer = await connect(port, base, i)
        writer.write(
            (f"POST /_dinodia/zha/permit HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {WRONG}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        writer.write(body)
        await asyncio.wait_for(writer.drain(), 30)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        stats["status_" + head.split(b" ")[1].decode()] += 1
        await asyncio.sleep(1)
        writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stats["failed"] += 1


async def wrong_tokens(port, base, count, stats, hold):
    start = time.monotonic()
    reader = writer = None
    for _ in range(count):
        if time.monotonic() - start > hold:
            stats["stopped_at_hold"] = 1
            break
        try:
            if writer is None:
                reader, writer = await connect(port, base, 0)
                stats["connections"] += 1
            writer.write(f"GET /api/ HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {WRONG}\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
            await reader.readexactly(length[0] if length else 0)
            stats["status_" + head.split(b" ")[1].decode()] += 1
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            stats["failed"] += 1
            writer = None
    stats["seconds"] = round(time.monotonic() - start, 2)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--hold", type=float, default=10)
    p.add_argument("--source-base", type=int, default=1)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from collections import Counter
    stats = Counter()
    t0 = time.monotonic()
    if a.mode == "wrong_tokens":
        await wrong_tokens(a.port, a.source_base, a.count, stats, a.hold)
    else:
        tasks = []
        for i in range(a.count):
            if a.mode == "ws_preauth":
                tasks.append(ws_attack(a.port, a.source_base, i, stats, 1024 * 1024, 2))
            elif a.mode == "ws_never_login":
                tasks.append(ws_attack(a.port, a.source_base, i, stats, 0, a.hold))
            elif a.mode == "idle":
                tasks.append(idle(a.port, a.source_base, i, stats, a.hold))
            elif a.mode == "tokenless":
                tasks.append(tokenless(a.port, a.source_base, i, stats, a.hold))
            elif a.mode == "zha_permit":
                tasks.append(zha_permit(a.port, a.source_base, i, stats))
            else:
                raise SystemExit("unknown mode " + a.mode)
            if i % 200 == 199:
                await asyncio.sleep(0)  # let the connects so far start
        sem_tasks = [asyncio.ensure_future(t) for t in tasks]
        await asyncio.gather(*sem_tasks)
    stats["elapsed_s"] = round(time.monotonic() - t0, 1)
    stats["pid"] = os.getpid()
    print(json.dumps(dict(stats)), flush=True)


asyncio.run(main())
