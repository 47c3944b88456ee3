// Who else is on the page, and what they are editing: presence and signals of the check
// channel's group "web", over a socket of its own. Both are ephemeral (nothing to resume): on
// every (re)connection a page asks who is here and says it arrived, and the pages with a form
// open then say again what they are editing (a page that came meanwhile cannot know).
//
//   presence, presence.joined, presence.left -> the "Also here" list
//   signal "arrived"                         -> say again what this page is editing
//   signal "editing" {resource, uuid}        -> a marker with the editor's name on that row
//   signal "editing" null                    -> the editor closed its form

export class Company {
  // socket: a LiveSocket on /identity/ws/check/web/; tables: {resource: PagedTable};
  // show(names): the other users here, by name.
  constructor(socket, tables, show) {
    Object.assign(this, { socket, tables, show });
    this.me = null; // the signed-in user's uuid
    this.members = new Map(); // uuid -> name, everyone here
    this.editing = new Map(); // editor's uuid -> {resource, uuid}
    this.mine = null; // what this page is editing: {resource, uuid} or null
  }

  start(me) {
    this.me = me;
  }

  stop() {
    this.members.clear();
    this.clearMarks();
    this.editing.clear();
    this.mine = null;
    this.show([]);
  }

  // The socket greeted us (first time, or again after a reconnection).
  greeted() {
    this.socket.send({ type: "presence" });
    this.socket.send({ type: "signal", event: "arrived", payload: null });
    if (this.mine) this.announce();
  }

  // This page opened (or, with null, closed) the editor of a row.
  edit(resource, uuid) {
    this.mine = uuid ? { resource, uuid } : null;
    this.announce();
  }

  announce() {
    this.socket.send({ type: "signal", event: "editing", payload: this.mine });
  }

  receive(frame) {
    if (frame.type === "presence") {
      this.members = new Map(frame.members.map((member) => [member.uuid, member.name]));
      this.refresh();
    } else if (frame.type === "presence.joined") {
      this.members.set(frame.member.uuid, frame.member.name);
      this.refresh();
    } else if (frame.type === "presence.left") {
      this.members.delete(frame.member.uuid);
      this.editing.delete(frame.member.uuid);
      this.refresh();
    } else if (frame.type === "signal" && frame.event === "arrived") {
      if (this.mine) this.announce(); // the newcomer learns what this page is editing
    } else if (frame.type === "signal" && frame.event === "editing" && frame.sender) {
      const payload = frame.payload;
      if (payload && this.tables[payload.resource] && typeof payload.uuid === "string") {
        this.editing.set(frame.sender, { resource: payload.resource, uuid: payload.uuid });
      } else {
        this.editing.delete(frame.sender);
      }
      this.refresh();
    }
  }

  refresh() {
    const others = [...this.members].filter(([uuid]) => uuid !== this.me);
    this.show(others.map(([, name]) => name).sort());
    this.clearMarks();
    const editors = new Map(); // "<resource> <uuid>" -> names
    for (const [editor, { resource, uuid }] of this.editing) {
      const name = this.members.get(editor);
      if (editor === this.me || !name) continue;
      const key = `${resource} ${uuid}`;
      editors.set(key, [...(editors.get(key) ?? []), name]);
    }
    for (const [key, names] of editors) {
      const [resource, uuid] = key.split(" ");
      this.tables[resource].mark(uuid, names.sort());
    }
  }

  clearMarks() {
    for (const table of Object.values(this.tables)) table.mark(null);
  }
}
