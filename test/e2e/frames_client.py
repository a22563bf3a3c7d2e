#!/usr/bin/env python3
"""N Python `websockets` clients (Debian python3-websockets, legacy asyncio API, 10.x) against one WebSocket URL.

Driven by test/e2e/frames_clients.ts as a child process (loopback only). Every client connects, does its part, then
waits for the connection to close; the script prints one JSON line on stdout:
  {"opened": <clients that got the 101>, "codes": [<close code each client saw>...], "errors": [...]}
The code is `close_code` of the library: the code of the close frame the client received, 1006 when none arrived.

modes:
  flood     send up to --count small text messages back to back (yielding to the event loop between sends, so the
            reader can see a close frame), until the connection closes
  burst     the same without yielding: all --count messages are written before the client reads anything
  oversize  send one binary message of --size bytes
  wait      print "ready" once all clients are open, read one line from stdin, then each client sends one message
Everything is bounded: --count messages, --timeout seconds per client after the action.
"""
import argparse
import asyncio
import json
import os
import sys

import websockets


async def client(args, i, opened, go):
    try:
        ws = await websockets.connect(
            args.url, compression=None, max_size=None, ping_interval=None, close_timeout=args.timeout, open_timeout=5
        )
    except Exception as e:  # the upgrade failed: no close code
        opened.append(False)
        return None, "connect %d: %r" % (i, e)
    opened.append(True)
    err = None
    try:
        if args.mode == "wait":
            await go.wait()
            await ws.send("after drain %d" % i)
        elif args.mode == "oversize":
            await ws.send(os.urandom(args.size))
        else:
            for n in range(args.count):
                await ws.send("flood %d %d" % (i, n))
                if args.mode == "flood":
                    await asyncio.sleep(0)
    except websockets.ConnectionClosed:
        pass  # closed while sending: the code is read below
    except Exception as e:
        err = "client %d: %r" % (i, e)
    try:
        # read (and drop) whatever comes until the close; bounded by the timeout
        async def drain():
            async for _ in ws:
                pass

        await asyncio.wait_for(drain(), args.timeout)
    except websockets.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        err = "client %d: no close within %ss" % (i, args.timeout)
        await ws.close()  # bounded by close_timeout
    except Exception as e:
        err = "client %d: %r" % (i, e)
    await ws.wait_closed()
    return ws.close_code, err


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--mode", choices=["flood", "burst", "oversize", "wait"], default="flood")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    opened = []
    go = asyncio.Event()
    tasks = [asyncio.ensure_future(client(args, i, opened, go)) for i in range(args.clients)]
    if args.mode == "wait":
        for _ in range(200):  # bounded wait for the opens (10 s)
            if len(opened) == args.clients:
                break
            await asyncio.sleep(0.05)
        print("ready %d" % sum(opened), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        go.set()
    results = await asyncio.gather(*tasks)
    print(json.dumps({
        "opened": sum(opened),
        "codes": [r[0] for r in results],
        "errors": [r[1] for r in results if r[1]],
    }), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
