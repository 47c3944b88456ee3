"""
Realtime: every frame a WebSocket client receives from a topic, numbered, kept and delivered in
order, or announced as lost. The path of a frame, module by module:

1. `publish`: a committed write (or `manage.py broadcast`) builds the frame's payload
   (`frames`) and hands it to its process's publisher thread; daphne publishes chat messages
   itself.
2. `broker`: the one source of truth for numbering. One atomic step per frame gives it the next
   `seq` of its topic's epoch, keeps it in the topic's history and announces it (Redis: a Lua
   script, a stream, pub/sub; without Redis: an SQLite file the machine's processes share).
3. `hub`: in each daphne process, one hub per topic hears the announcements, checks they follow
   on (reading any gap back from the history, or telling sockets it is lost) and writes each
   frame to every socket of the topic, framed once (`daphne`).
4. `consumers`: the socket's side: `hello` first, `?since=` to resume, limits (`limits`) and
   `error` frames; the channel layer only closes sockets whose credential ended.

Names of topics, events and positions are built in `topics`; REST reads report their topic's
position in `X-Stream-Position` (`rest`).
"""
