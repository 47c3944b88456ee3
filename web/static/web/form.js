// A create/edit form in a <dialog>. Fields are checked while the user types, through the check
// channel (the same validation the REST create runs, uniqueness included), so mistakes show
// next to the field before anything is submitted. Edits are conditional: PATCH with If-Match
// carrying the ETag read when the form opened, so a change made meanwhile is never overwritten.
import { request } from "./api.js";

const CHECK_DELAY_MS = 300;

// Asks the server to validate one field; answers arrive as `check.result` frames.
export class Checker {
  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.waiting = new Map(); // id -> callback
  }

  // The id sent, or null when the socket is down (the server validates on submit anyway).
  check(resource, field, value, done) {
    const id = this.nextId++;
    if (!this.socket.send({ type: "check", id, resource, field, value })) return null;
    this.waiting.set(id, done);
    return id;
  }

  receive(frame) {
    const done = this.waiting.get(frame.id);
    this.waiting.delete(frame.id);
    done?.(frame);
  }

  // A closed socket will never answer what it was asked.
  reset() {
    this.waiting.clear();
  }
}

export class ResourceForm {
  // resource: the check channel's resource ("user", "item"), also the prefix of element ids;
  // label: "user"; path: the REST list; checked: the fields checked live; describe(row): its
  // name in titles; onSaved(row, mode), onEditing(uuid or null: the row now being edited),
  // onSessionEnded(), onError(error).
  constructor(dialog, options) {
    const { resource, label, path, checked, checker, describe } = options;
    Object.assign(this, { dialog, resource, label, path, checked, checker, describe });
    this.onSaved = options.onSaved;
    this.onEditing = options.onEditing ?? (() => {});
    this.onSessionEnded = options.onSessionEnded;
    this.onError = options.onError;
    this.form = dialog.querySelector("form");
    this.title = dialog.querySelector("h2");
    this.alertBox = this.form.querySelector(".form-error");
    this.reloadButton = this.form.querySelector(".reload");
    this.submitButton = this.form.querySelector('[type="submit"]');
    this.fields = [...this.form.elements].filter((element) => element.name);
    // Each field's own aria-describedby (its hint); an error is added to it while shown.
    this.describedBy = new Map(
      this.fields.map((field) => [field.name, field.getAttribute("aria-describedby") || ""]),
    );
    this.errors = new Map(); // field name -> messages shown
    this.latestCheck = new Map(); // field name -> id of the check whose answer counts
    this.timers = new Map();
    this.mode = null;
    this.busy = false;
    this.bind();
  }

  bind() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.querySelector("[data-cancel]").addEventListener("click", () => this.dialog.close());
    this.reloadButton.addEventListener("click", () => this.reload());
    for (const field of this.fields) {
      field.addEventListener("input", () => this.changed(field.name));
    }
    this.dialog.addEventListener("close", () => this.closed());
  }

  get isOpen() {
    return this.dialog.open;
  }

  openCreate(opener) {
    this.open("create", null, null, opener);
  }

  async openEdit(uuid, opener) {
    try {
      const { data, etag } = await request("GET", `${this.path}${uuid}/`);
      this.open("edit", data, etag, opener);
    } catch (error) {
      if (error.status === 401) this.onSessionEnded();
      else this.onError(error);
    }
  }

  open(mode, row, etag, opener) {
    this.mode = mode;
    this.uuid = row ? row.uuid : null;
    this.etag = etag;
    this.original = row || {};
    this.opener = opener;
    this.title.textContent =
      mode === "create" ? `New ${this.label}` : `Edit ${this.label} ${this.describe(row)}`;
    for (const element of this.form.querySelectorAll(".create-only")) {
      element.hidden = mode !== "create";
      for (const input of element.querySelectorAll("input")) input.disabled = mode !== "create";
    }
    this.form.reset();
    if (row) this.fill(row);
    this.clearAll();
    this.dialog.showModal();
    this.fields[0].focus();
    if (mode === "edit") this.onEditing(this.uuid);
  }

  fill(row) {
    for (const field of this.fields) {
      if (!(field.name in row)) continue;
      if (field.type === "checkbox") field.checked = Boolean(row[field.name]);
      else field.value = row[field.name] ?? "";
    }
  }

  clearAll() {
    for (const field of this.fields) this.showErrors(field.name, []);
    this.latestCheck.clear();
    this.alert("");
    this.reloadButton.hidden = true;
  }

  // The field's value as the API takes it.
  value(field) {
    if (field.type === "checkbox") return field.checked;
    if (field.inputMode === "numeric" && /^\d+$/.test(field.value.trim())) {
      return Number(field.value.trim());
    }
    return field.value;
  }

  payload() {
    const body = {};
    for (const field of this.fields) {
      if (field.disabled) continue;
      if (field.type === "password" && field.value === "") continue; // optional on create
      body[field.name] = this.value(field);
    }
    return body;
  }

  changed(name) {
    // What was said about the previous value no longer applies.
    this.showErrors(name, []);
    this.latestCheck.delete(name);
    if (!this.checked.includes(name)) return;
    clearTimeout(this.timers.get(name));
    // Debounced: one check when the typing pauses, not one per keystroke.
    this.timers.set(name, setTimeout(() => this.check(name), CHECK_DELAY_MS));
  }

  check(name) {
    const field = this.form.elements[name];
    const value = this.value(field);
    // Unchanged on an edit: the record's own value (a uniqueness check would flag itself).
    if (this.mode === "edit" && String(value) === String(this.original[name] ?? "")) return;
    const id = this.checker.check(this.resource, name, value, (result) => {
      if (this.latestCheck.get(name) === result.id && this.isOpen) {
        this.showErrors(name, result.errors);
      }
    });
    if (id !== null) this.latestCheck.set(name, id);
  }

  showErrors(name, messages) {
    const field = this.form.elements[name];
    const box = this.form.querySelector(`#${this.resource}-${name}-error`);
    if (!field || !box) return;
    const invalid = messages.length > 0;
    // The box stays in place, empty when valid: a live region must exist before its text
    // changes for screen readers to announce the error as it appears.
    box.textContent = messages.join(" ");
    if (invalid) {
      this.errors.set(name, messages);
      field.setAttribute("aria-invalid", "true");
    } else {
      this.errors.delete(name);
      field.removeAttribute("aria-invalid");
    }
    const describedBy = [this.describedBy.get(name), invalid ? box.id : ""].filter(Boolean);
    if (describedBy.length) field.setAttribute("aria-describedby", describedBy.join(" "));
    else field.removeAttribute("aria-describedby");
  }

  alert(message) {
    this.alertBox.textContent = message; // an empty alert takes no room (app.css)
  }

  async submit() {
    if (this.busy) return;
    const invalid = this.fields.find((field) => this.errors.has(field.name) && !field.disabled);
    if (invalid) {
      // Known errors: don't send what the server would refuse.
      this.alert("Please fix the highlighted fields first.");
      invalid.focus();
      return;
    }
    this.busy = true;
    this.submitButton.setAttribute("aria-disabled", "true");
    try {
      const { data } =
        this.mode === "create"
          ? await request("POST", this.path, { body: this.payload() })
          : await request("PATCH", `${this.path}${this.uuid}/`, {
              body: this.payload(),
              ifMatch: this.etag,
            });
      const mode = this.mode;
      this.dialog.close();
      this.onSaved(data, mode);
    } catch (error) {
      this.failed(error);
    } finally {
      this.busy = false;
      this.submitButton.removeAttribute("aria-disabled");
    }
  }

  failed(error) {
    if (error.status === 401) {
      this.dialog.close();
      this.onSessionEnded();
      return;
    }
    const unplaced = [];
    for (const [name, messages] of Object.entries(error.fieldErrors)) {
      const list = Array.isArray(messages) ? messages.map(String) : [String(messages)];
      if (this.form.elements[name] && !this.form.elements[name].disabled) {
        this.showErrors(name, list);
      } else if (name !== "non_field_errors" && name !== "detail") {
        unplaced.push(`${name}: ${list.join(" ")}`);
      }
    }
    const placed = this.fields.find((field) => this.errors.has(field.name));
    const summary = placed && !unplaced.length ? "Please fix the highlighted fields." : null;
    this.alert(summary || [error.message, ...unplaced].join(" "));
    this.reloadButton.hidden = error.status !== 412;
    (placed || this.fields[0]).focus();
  }

  // After a 412, or a change announced meanwhile: start again from the current version.
  async reload() {
    try {
      const { data, etag } = await request("GET", `${this.path}${this.uuid}/`);
      this.etag = etag;
      this.original = data;
      this.fill(data);
      this.clearAll();
      this.title.textContent = `Edit ${this.label} ${this.describe(data)}`;
      this.fields[0].focus();
    } catch (error) {
      this.failed(error);
    }
  }

  // A change event for the record being edited (made by someone else, or by us in flight).
  remoteChange(uuid, deleted) {
    if (!this.isOpen || this.mode !== "edit" || this.uuid !== uuid || this.busy) return;
    if (deleted) {
      this.alert(`This ${this.label} was deleted elsewhere; it can no longer be saved.`);
      return;
    }
    this.alert(
      `This ${this.label} was changed elsewhere while you were editing. ` +
        "Load the latest version before saving, or your save will be refused.",
    );
    this.reloadButton.hidden = false;
  }

  setOptions(name, options) {
    const select = this.form.elements[name];
    const current = select.value;
    select.replaceChildren(
      ...options.map(({ value, label }) => new Option(label, value, false, value === current)),
    );
  }

  closed() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (this.mode === "edit") this.onEditing(null);
    this.mode = null;
    // Back to where the user was; the row's button may have been redrawn meanwhile.
    const opener = this.opener && this.opener.isConnected ? this.opener : null;
    (opener || document.getElementById("main")).focus();
  }
}
