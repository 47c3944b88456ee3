// A WebSocket that stays connected, and misses nothing. When the server goes away (a restart
// closes sockets with 4503, a crash or network loss shows as 1006) it reconnects with
// exponential backoff, capped, with jitter so that a thousand pages do not all come back in the
// same millisecond, and resumes from the last position it saw (`?since=<epoch>:<seq>`): the
// server sends what was missed, or says in its `hello` that it cannot (`recovered: false`),
// and only then is the page read again (`lost`). 4401 means the session was revoked:
// reconnecting could only fail, so it stops.
//
// A socket also carries live queries (`follow`): each follows the rows of a REST list that
// match a query string, and is subscribed again, from where it was, after every reconnection.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
// Backoff starts over only once a connection has proved stable; a server that accepts and
// drops at once must not be hammered at the base rate.
const STABLE_AFTER_MS = 10000;
export const CLOSE_NORMAL = 1000;
export const CLOSE_REVOKED = 4401;

export class LiveSocket {
  // `url(since)` is awaited for each attempt (it may fetch a one-use ticket); when it throws,
  // the attempt fails as a refused handshake would. `topic` is the socket's own topic, whose
  // position it keeps. Handlers: frame(frame), greeted() (after each hello), lost(), revoked(),
  // refused(), state(state).
  constructor(topic, url, handlers) {
    this.topic = topic;
    this.url = url;
    this.handlers = handlers;
    this.positions = new Map(); // topic -> "<epoch>:<seq>" of the last frame seen of it
    this.follows = new Map(); // id -> {resource, query, topic, since, frame(), lost()}
    this.greeted = false; // this connection's hello has come: subscriptions may be sent
    this.serial = 0;
    this.state = "offline";
    this.attempt = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = true;
    this.everOpened = false;
    this.retryNow = () => {
      // Back online: don't wait out the rest of a long backoff.
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
        this.connect();
      }
    };
  }

  // `since`: the position the page's data was read at (REST's X-Stream-Position), if known.
  get position() {
    return this.positions.get(this.topic) ?? null;
  }

  start(since = null) {
    if (since) this.positions.set(this.topic, since);
    // Without a position (the server could not report one) nothing proves that no frame came
    // between the page's read and the first hello: read again once connected.
    this.unanchored = since === null;
    this.stopped = false;
    this.attempt = 0;
    this.everOpened = false;
    window.addEventListener("online", this.retryNow);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.follows.clear();
    this.positions.clear();
    this.greeted = false;
    window.removeEventListener("online", this.retryNow);
    clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(CLOSE_NORMAL);
    this.setState("offline");
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  async connect() {
    this.timer = null;
    this.setState(this.everOpened || this.attempt ? "reconnecting" : "connecting");
    let url;
    try {
      url = await this.url(this.position);
    } catch {
      if (this.stopped) return;
      this.handlers.refused?.();
      this.schedule();
      return;
    }
    if (this.stopped) return;
    const socket = new WebSocket(url);
    this.socket = socket;
    let openedAt = 0;
    socket.addEventListener("open", () => {
      openedAt = Date.now();
      this.everOpened = true;
      this.setState("live");
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return; // the server only sends JSON; anything else is not ours to act on
      }
      this.received(frame);
    });
    socket.addEventListener("close", (event) => this.closed(socket, event, openedAt));
  }

  received(frame) {
    if (frame.topic && typeof frame.seq === "number") {
      this.positions.set(frame.topic, `${frame.epoch}:${frame.seq}`);
    }
    if (frame.type === "hello") {
      if (frame.topic !== this.topic) return;
      // false: frames were lost (too long away, or the server's history was reset).
      if (frame.recovered === false || this.unanchored) this.handlers.lost?.();
      this.unanchored = false;
      this.greeted = true;
      for (const id of this.follows.keys()) this.sendSubscribe(id);
      this.handlers.greeted?.();
      return;
    }
    const follow = this.follows.get(frame.subscription ?? frame.id);
    if (follow && frame.type === "subscribed") {
      follow.topic = frame.topic;
      if (frame.recovered === false) follow.lost();
      else follow.subscribed?.();
    } else if (follow && frame.subscription !== undefined) {
      follow.frame(frame);
    } else if (follow && frame.type === "error") {
      follow.lost(); // refused: show the list as read, not live
    } else {
      this.handlers.frame?.(frame);
    }
  }

  // Follow the rows of `resource` matching `query` (a REST list's query string, read at
  // `since`) in place of whatever `name` followed before: frame(rowFrame), lost(), and
  // subscribed() once the server follows it.
  follow(name, resource, query, since, { frame, lost, subscribed }) {
    for (const [id, follow] of this.follows) {
      if (follow.name !== name) continue;
      this.follows.delete(id);
      this.send({ type: "unsubscribe", id });
    }
    const id = `${name}-${++this.serial}`;
    this.follows.set(id, { name, resource, query, since, topic: null, frame, lost, subscribed });
    if (this.greeted) this.sendSubscribe(id);
  }

  sendSubscribe(id) {
    const follow = this.follows.get(id);
    const since = (follow.topic && this.positions.get(follow.topic)) || follow.since;
    const frame = { type: "subscribe", id, resource: follow.resource, filter: follow.query };
    if (since) frame.since = since;
    this.send(frame);
  }

  closed(socket, event, openedAt) {
    if (socket !== this.socket || this.stopped) return; // we closed it, or replaced it
    this.socket = null;
    this.greeted = false;
    if (event.code === CLOSE_REVOKED) {
      this.stop();
      this.handlers.revoked?.();
      return;
    }
    // A refused handshake (403: bad token, bad origin) reaches a browser as a bare 1006, just
    // like a server that is down: let the owner find out which by other means.
    if (!openedAt) this.handlers.refused?.();
    if (openedAt && Date.now() - openedAt > STABLE_AFTER_MS) this.attempt = 0;
    this.schedule();
  }

  schedule() {
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.attempt += 1;
    this.setState("reconnecting");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.handlers.state?.(state);
  }
}

// The WebSocket URL of a path on this page's own host (ws: or wss: to match the page).
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
