"""The machine's floor for a spaced token: what a bare uvloop process spends per wake-up that
reads one small upstream write and writes one small client write, with no Python work between.

A writer process (core 1) sends 60-byte lines on 16 connections, 1 ms apart on each (as the
simulator's `delay_ms=1`); this process (core 0) reads each with a reader callback and, with
`--forward`, writes it on to a client connection read by a third process (core 1), as the gateway
forwards a token. Reported: this process's CPU (user and kernel) per read. Whatever the
gateway does per spaced token comes on top of this. Usage: `python -m bench.io_floor [--forward]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time

import uvloop

LINE = b'{"result":{"response":{"token":" word","isThinking":false,"messageTag":"final"}}}\n'[:60]


def _writer(port: int, streams: int, lines: int) -> None:
    os.sched_setaffinity(0, {1})

    async def main() -> None:
        async def one() -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(lines):
                writer.write(LINE)
                await asyncio.sleep(0.001)
            writer.close()

        await asyncio.gather(*(one() for _ in range(streams)))

    asyncio.run(main())


def _drainer(sock: socket.socket) -> None:
    os.sched_setaffinity(0, {1})
    while sock.recv(65536):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forward", action="store_true", help="write each read on to a client")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--lines", type=int, default=400)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    # The client connection is TCP on loopback, as the load generator's is (not a socketpair).
    front = socket.socket()
    front.bind(("127.0.0.1", 0))
    front.listen(1)
    client = socket.create_connection(front.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = front.accept()[0]
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    front.close()
    children = []
    if args.forward:
        pid = os.fork()
        if pid == 0:
            server.close()
            _drainer(client)
            os._exit(0)
        children.append(pid)
    client.close()
    pid = os.fork()
    if pid == 0:
        _writer(listener.getsockname()[1], args.streams, args.lines)
        os._exit(0)
    children.append(pid)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        left, reads = [args.streams], [0]
        server.setblocking(False)
        out = server if args.forward else None

        def on_read(conn: socket.socket) -> None:
            data = conn.recv(65536)
            if not data:
                loop.remove_reader(conn.fileno())
                conn.close()
                left[0] -= 1
                if not left[0]:
                    done.set_result(None)
                return
            reads[0] += 1
            if out is not None:
                out.send(data)

        conns = [listener.accept()[0] for _ in range(args.streams)]
        cpu = time.process_time()
        for conn in conns:
            conn.setblocking(False)
            loop.add_reader(conn.fileno(), on_read, conn)
        await done
        spent = time.process_time() - cpu
        what = "read and forwarded" if args.forward else "read"
        print(
            f"{spent / reads[0] * 1e6:.1f} us CPU per token {what} ({reads[0]} reads, 1 ms apart per stream)"
        )

    uvloop.run(run())
    server.close()
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
