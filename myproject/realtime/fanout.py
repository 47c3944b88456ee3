"""
Delivering one frame to a hub's live listeners: every member gets the frame, every live query
that sees one of its written rows gets a frame per row.

A frame is framed once for all the members that may read the same text (`Frame.prepared`: the
staff's and the public variant at most) and written to each socket's sink: autobahn's
`sendData` would build a debug log line per call, whatever the log level, which was most of the
cost per socket (make bench: fan-out). Per-row frames are built and framed once per live query,
subscription id and kind of reader, and each query tests a row once whatever the number of its
subscribers (myproject.realtime.queries); testing many rows against many queries yields to the
event loop as it goes. Sockets that daphne does not serve go through their consumer's `send`.
"""

import asyncio
from typing import TYPE_CHECKING, Any

from myproject import metrics
from myproject.realtime.frames import Frame
from myproject.realtime.listeners import Member, row_frame
from myproject.realtime.pacing import Pacer
from myproject.realtime.sink import frame_once

if TYPE_CHECKING:
    from myproject.realtime.hub import Hub


async def deliver(hub: "Hub", frame: Frame) -> None:
    seq = frame.seq
    public = frame.has_public
    wire: dict[str, bytes] = {}
    others: list[Member] = []
    sent = 0
    for member in list(hub.members):
        if member.seq >= seq:
            continue
        member.seq = seq
        sink = member.sink
        if sink.protocol is None:
            others.append(member)
            continue
        variant = sink.variant(frame) if public else "frame"
        data = wire.get(variant)
        if data is None:
            data = wire[variant] = frame.prepared(variant, sink.protocol.factory).payloadHybi
        sink.write(data)
        sent += 1
    metrics.WS_FRAMES_SENT.inc(sent)
    for member in others:
        await member.sink.send(frame.text(member.sink.variant(frame)))
    if hub.queries and frame.resource is not None:
        await _deliver_rows(hub, frame)


async def _deliver_rows(hub: "Hub", frame: Frame) -> None:
    found: dict[tuple, list[tuple[str, Any, Any]]] = {}
    for _ in hub.queries.matches(frame.resource, frame.rows, found):
        await asyncio.sleep(0)
    pacer = Pacer()
    for key, seen in found.items():
        texts: dict[tuple, str] = {}
        wire: dict[tuple, bytes] = {}
        for follower in list(hub.queries.subscribers.get(key, ())):
            if follower.seq >= frame.seq:
                continue
            follower.seq = frame.seq
            sink = follower.sink
            for number, (action, before, after) in enumerate(seen):
                uuid = (after or before)["uuid"]
                cache = (number, follower.id, sink.staff or uuid == sink.user_id)
                text = texts.get(cache)
                if text is None:
                    text = texts[cache] = row_frame(frame, follower, action, before, after)
                if sink.protocol is None:
                    await sink.send(text)
                    continue
                framed = wire.get(cache)
                if framed is None:
                    framed = wire[cache] = frame_once(text, sink.protocol.factory)
                sink.write(framed)
                metrics.WS_FRAMES_SENT.inc()
            await pacer.pace()
