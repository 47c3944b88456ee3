"""
The floor for fan-out in Python: a bare `websockets` asyncio server (no Django, no Redis, no
compression) that broadcasts the same text to every socket, the anchor `make bench` (fan-out
cost) holds daphne's CPU per delivered frame against.

    python -m bench.bare_ws PORT

Every socket but the control one just listens. A socket on `/control` sends
`{"count": N, "text": "..."}`; the server broadcasts `text` N times to the others (frames of
one burst go out back to back, as a hub's do when frames arrive together), then answers
`done` on the control socket.
"""

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

listeners: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    if connection.request.path == "/control":
        async for message in connection:
            order = json.loads(message)
            text = order["text"]
            for _ in range(order["count"]):
                broadcast(listeners, text)
            await connection.send("done")
        return
    listeners.add(connection)
    try:
        await connection.wait_closed()
    finally:
        listeners.discard(connection)


async def main(port: int) -> None:
    # compression=None: daphne (autobahn) offers no permessage-deflate either.
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_queue=None, backlog=1024) as server:  # fmt: skip
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
