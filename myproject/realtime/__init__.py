"""
Realtime: every frame a WebSocket client receives from a topic, numbered, kept and delivered in
order, or announced as lost; and beside it Channels' channel layer, for what is ephemeral
(signals, presence) and for consumers of one's own. The path of a frame, module by module:

1. `publish` builds a committed write's frame (`frames` says what it holds) and puts it in the
   write's own transaction: the `outbox` (`models.Outbox`), whose relay publishes it, once,
   whatever happens to the writing process after the commit.
2. `broker` numbers, keeps and announces it: the one source of truth for positions and history
   (`base`; `redis` with its Lua in `lua/`; `local`, an SQLite file, without Redis).
3. `hubs` hear the broker in each daphne process and hand each frame to its topic's `hub`,
   which checks that it follows on (reading a gap back from the history, or telling its
   listeners it is lost), keeps a ring of recent frames, brings resuming listeners up to date
   and passes live frames to `fanout`: to every `listeners.Member` (a socket of the topic) and,
   row by row, to every `listeners.Follower` (a live query, `queries` with `collation`).
4. `sink`: the one place that writes to a socket, which closes a client that stops reading.
5. `consumers`: the socket's side: `hello`, `?since=`, error frames; with `inbound` (what a
   client sends, refused or read), `subscriptions` (its live queries) and `layer` (its channel
   on the channel layer: groups, signals, `presence`).

Beside them: `topics` (names and positions), `quotas` (per-user socket caps and rates),
`pacing` (long work in slices), `revocation` (sockets closed when what opened them ends),
`daphne` (what the daphne process changes in its libraries), `rest` (`X-Stream-Position`).
"""
