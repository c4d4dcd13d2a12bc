#!/usr/bin/env python3
"""The peer of levictl/tests/ws_interop.rs: a Python `websockets` server on 127.0.0.1 that plays
Binance Spot from a recorded capture.

- GET /api/v3/depth?symbol=S answers (plain HTTP, through `process_request`) the recorded REST
  depth snapshots of S, in file order;
- the WebSocket path must subscribe to the recording's streams (`/stream?streams=...`, in any
  order); the server then sends
  every recorded message as a text frame (every FRAGMENT_EVERY-th one fragmented in three),
  pings the client every PING_EVERY messages with a payload of its own and waits for the
  matching pong, and ends with a Close (1000) whose reason counts the pongs received.

Usage: ws_replay_server.py PORT STREAM_CAPTURE SNAPSHOT_CAPTURE. Prints "ready <port>" once
listening; exits after the one WebSocket session (or on SIGTERM/SIGKILL from the test).
"""

import asyncio
import sys
from collections import defaultdict, deque
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve

PING_EVERY = 40
FRAGMENT_EVERY = 7
PONG_TIMEOUT_SECONDS = 10


def capture_lines(path):
    """(url or None, body) for each message line of a capture (cryptofeed's format)."""
    with open(path, encoding="utf-8") as f:
        header = None
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if " <-> " in line:
                header = line.split(" <-> ")[0]
                continue
            url = None
            if " -> " in line:
                url, line = line.split(" -> ", 1)
            _epoch, body = line.split(": ", 1)
            yield header, url, body


def streams_of(url):
    """The set of streams a combined-stream URL subscribes to (their order does not matter)."""
    return set(parse_qs(urlsplit(url).query).get("streams", [""])[0].split("/"))


def main():
    port = int(sys.argv[1])
    stream_path, snapshot_path = sys.argv[2], sys.argv[3]
    messages = []
    stream_url = None
    for header, _url, body in capture_lines(stream_path):
        stream_url = header
        messages.append(body)
    expected_streams = streams_of(stream_url)
    expected_path = urlsplit(stream_url).path + "?" + urlsplit(stream_url).query
    snapshots = defaultdict(deque)
    for _header, url, body in capture_lines(snapshot_path):
        symbol = parse_qs(urlsplit(url).query)["symbol"][0]
        snapshots[symbol].append(body)

    done = asyncio.Event()

    def process_request(connection, request):
        target = urlsplit(request.path)
        if target.path == "/api/v3/depth":
            symbol = parse_qs(target.query).get("symbol", [""])[0]
            if not snapshots[symbol]:
                return connection.respond(HTTPStatus.NOT_FOUND, f"no snapshot left for {symbol}\n")
            response = connection.respond(HTTPStatus.OK, snapshots[symbol].popleft())
            response.headers["Content-Type"] = "application/json"
            return response
        if urlsplit(request.path).path != "/stream" or streams_of(request.path) != expected_streams:
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"unexpected path {request.path}, want {expected_path}\n"
            )
        return None

    async def session(ws):
        pongs = 0
        try:
            for n, message in enumerate(messages):
                if n % FRAGMENT_EVERY == FRAGMENT_EVERY - 1 and len(message) > 3:
                    third = len(message) // 3
                    await ws.send([message[:third], message[third : 2 * third], message[2 * third :]])
                else:
                    await ws.send(message)
                if n % PING_EVERY == PING_EVERY - 1:
                    waiter = await ws.ping(f"levibot ping {n}".encode())
                    await asyncio.wait_for(waiter, PONG_TIMEOUT_SECONDS)
                    pongs += 1
            await ws.close(1000, f"end of corpus; pongs {pongs}")
        finally:
            done.set()

    async def run():
        async with serve(
            session,
            "127.0.0.1",
            port,
            process_request=process_request,
            compression=None,
            ping_interval=None,
            max_size=1 << 20,
        ):
            print(f"ready {port}", flush=True)
            await done.wait()
            await asyncio.sleep(0.5)

    asyncio.run(run())


if __name__ == "__main__":
    main()
