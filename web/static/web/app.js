// The web client. After logging in it shows two live tables, users and items, with
// create/edit forms, kept current by two sockets:
//   /identity/ws/check/users/?ticket=… user.* events, and the forms' live field checks
//   /catalog/ws/                       item.* and category.* events
// Both resume after a reconnection from the last position seen (live.js).
// A change made anywhere (another browser, the REST API, the admin, import_catalog) shows up
// here without a reload. A third socket, /identity/ws/check/web/, tells who else is on the
// page and which rows they are editing (company.js).
import { request, withQuery } from "./api.js";
import { Company } from "./company.js";
import { Checker, ResourceForm } from "./form.js";
import { LiveSocket, socketUrl } from "./live.js";
import { session } from "./session.js";
import { PagedTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const CONNECTION_LABELS = {
  live: "live",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  offline: "offline",
};

let me = null; // the signed-in user's record: decides which buttons are offered
const categories = new Map(); // uuid -> name, for the items table and the item form

// --- sockets -----------------------------------------------------------------------------

// A one-use ticket per handshake: the token itself never appears in a URL (where proxies and
// load balancers log it).
async function ticketUrl(path, since) {
  const { data } = await request("POST", "/identity/ws-ticket/");
  return socketUrl(withQuery(path, { ticket: data.ticket, since }));
}

const usersSocket = new LiveSocket(
  "users",
  (since) => ticketUrl("/identity/ws/check/users/", since),
  {
    frame: (frame) =>
      frame.type === "check.result" ? checker.receive(frame) : changed(frame, userForm),
    // The server could not replay what was sent while we were away: read the page again.
    lost: () => users.refetchSoon(),
    revoked: () => endSession("Your session was ended (password changed or account disabled)."),
    refused: verifySession,
    state: (state) => {
      if (state !== "live") checker.reset();
      showConnection();
    },
  },
);

const catalogSocket = new LiveSocket(
  "catalog",
  (since) => socketUrl(withQuery("/catalog/ws/", { since })),
  {
    frame: (frame) =>
      String(frame.type).startsWith("category.")
        ? loadCategories()
        : changed(frame, itemForm),
    lost: () => {
      loadCategories();
      items.refetchSoon();
    },
    state: showConnection,
  },
);

const checker = new Checker(usersSocket);

const pageSocket = new LiveSocket("web", (since) => ticketUrl("/identity/ws/check/web/", since), {
  frame: (frame) => company.receive(frame),
  greeted: () => company.greeted(),
});

// One indicator for both sockets: "live" only when everything is.
function showConnection() {
  const states = [usersSocket.state, catalogSocket.state];
  const state = states.every((s) => s === "live")
    ? "live"
    : ["reconnecting", "connecting", "offline"].find((s) => states.includes(s));
  $("conn").dataset.state = state;
  $("conn-text").textContent = CONNECTION_LABELS[state];
}

// A topic's change event: the tables follow their live queries (table.js); what is left here is
// keeping the open form and the signed-in user's own record current.
function changed({ type, data }, form) {
  if (typeof type !== "string" || !data) return;
  const action = type.slice(type.indexOf(".") + 1);
  if (action === "updated") {
    if (me && data.uuid === me.uuid) me = data;
    form.remoteChange(data.uuid, false);
  } else if (action === "deleted") {
    form.remoteChange(data.uuid, true);
  } else if (action === "bulk_updated" || action === "bulk_deleted") {
    data.uuids.forEach((uuid) => form.remoteChange(uuid, action === "bulk_deleted"));
  }
}

// --- tables and forms --------------------------------------------------------------------

const yesNo = (value) => (value ? "yes" : "no");
const day = (value) => (value ? new Date(value).toLocaleDateString() : "");

// Each table follows exactly the list it shows, from the position that list was read at;
// `data-live` on its section says when the server follows it.
function following(socket, name, resource, table) {
  return (query, position) => {
    delete table.section.dataset.live;
    socket.follow(name, resource, query, position, {
      frame: (frame) => table.live(frame),
      lost: () => table.refetchSoon(),
      subscribed: () => {
        table.section.dataset.live = "following";
      },
    });
  };
}

const users = new PagedTable($("users"), {
  path: "/identity/users/",
  orderBy: "name",
  columns: [
    { field: "name" },
    { field: "email" },
    { field: "phone" },
    { field: "enable", format: yesNo },
    { field: "is_staff", format: yesNo },
    { field: "date_joined", format: day },
  ],
  // Staff edit anyone; a user edits itself (the API enforces the same).
  canEdit: (row) => Boolean(me && (me.is_staff || row.uuid === me.uuid)),
  onEdit: (uuid, opener) => userForm.openEdit(uuid, opener),
  onError: failed,
  onQuery: (query, position) => followUsers(query, position),
});

const items = new PagedTable($("items"), {
  path: "/catalog/items/",
  orderBy: "sku",
  columns: [
    { field: "sku" },
    { field: "name" },
    { field: "category", format: (uuid) => categories.get(uuid) ?? "—" },
    { field: "price", className: "num" },
    { field: "stock", className: "num" },
    { field: "enable", format: yesNo },
  ],
  canEdit: () => Boolean(me?.is_staff),
  onEdit: (uuid, opener) => itemForm.openEdit(uuid, opener),
  onError: failed,
  onQuery: (query, position) => followItems(query, position),
});

const followUsers = following(usersSocket, "users", "user", users);
const followItems = following(catalogSocket, "items", "item", items);

const company = new Company(pageSocket, { user: users, item: items }, (names) => {
  $("company").hidden = names.length === 0;
  $("company-names").textContent = names.join(", ");
});

const formOptions = { checker, onSessionEnded: () => endSession(), onError: failed };

const userForm = new ResourceForm($("user-dialog"), {
  ...formOptions,
  resource: "user",
  label: "user",
  path: "/identity/users/",
  checked: ["name", "email", "phone", "password"],
  describe: (row) => row.name,
  onSaved: saved(users, "User", (row) => row.name),
  onEditing: (uuid) => company.edit("user", uuid),
});

const itemForm = new ResourceForm($("item-dialog"), {
  ...formOptions,
  resource: "item",
  label: "item",
  path: "/catalog/items/",
  checked: ["sku", "name", "price", "stock"],
  describe: (row) => row.sku,
  onSaved: saved(items, "Item", (row) => row.sku),
  onEditing: (uuid) => company.edit("item", uuid),
});

function saved(table, label, describe) {
  return (row, mode) => {
    say(`${label} ${describe(row)} ${mode === "create" ? "created" : "saved"}.`);
    // The live query reports the row too; showing the answer now makes the save feel immediate.
    table.update(row);
  };
}

$("users").querySelector("[data-create]").addEventListener("click", (event) => {
  userForm.openCreate(event.currentTarget);
});
$("items").querySelector("[data-create]").addEventListener("click", (event) => {
  itemForm.openCreate(event.currentTarget);
});

// The items table's category filter: "any", then every category, keeping the choice.
function setFilterOptions(select, options) {
  const chosen = select.value;
  const any = select.options[0];
  select.replaceChildren(
    any,
    ...options.map(({ value, label }) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      return option;
    }),
  );
  select.value = options.some((option) => option.value === chosen) ? chosen : "";
}

// Returns the position the categories were read at.
async function loadCategories() {
  try {
    const { data, position } = await request(
      "GET",
      withQuery("/catalog/categories/", { page_size: 1000 }),
    );
    categories.clear();
    for (const category of data.results) categories.set(category.uuid, category.name);
    const options = data.results.map((category) => ({ value: category.uuid, label: category.name }));
    itemForm.setOptions("category", options);
    setFilterOptions($("items-category"), options);
    items.redraw();
    return position;
  } catch (error) {
    failed(error);
    return null;
  }
}

// --- session -----------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.elements.username.value.trim();
  showLoginError("");
  say(""); // what was said before (logged out) is not about this attempt
  try {
    const { data } = await request("POST", "/identity/token/", {
      body: { username: name, password: form.elements.password.value },
    });
    session.save(data.token, name);
    form.reset();
    await enter();
  } catch (error) {
    showLoginError(error.status === 400 ? "Wrong name or password." : error.message);
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await request("DELETE", "/identity/token/"); // revokes this token on the server
  } catch {
    // Already invalid or unreachable: forgetting it here is what matters to this tab.
  }
  leave();
  say("You have logged out.");
});

async function enter() {
  try {
    me = await findMe(session.name);
  } catch (error) {
    if (error.status === 401) return endSession();
    me = null;
    say(error.message);
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = session.name;
  for (const button of document.querySelectorAll(".staff-only")) button.hidden = !me?.is_staff;
  // Read first, then listen from the positions the reads were made at: nothing in between is
  // missed (each read reports its topic's position, taken before its query).
  const [categoriesAt] = await Promise.all([loadCategories(), users.load(), items.load()]);
  usersSocket.start(users.position);
  catalogSocket.start(earlier(categoriesAt, items.position));
  company.start(me?.uuid ?? null);
  pageSocket.start();
}

// The earlier of two positions of one topic ("<epoch>:<seq>"); null if they cannot be compared.
function earlier(a, b) {
  if (!a || !b) return null;
  const [epochA, seqA] = a.split(":");
  const [epochB, seqB] = b.split(":");
  if (epochA !== epochB) return null;
  return Number(seqA) <= Number(seqB) ? a : b;
}

// There is no "who am I" endpoint: find the user by the name the token was issued for.
async function findMe(name) {
  const { data } = await request("GET", withQuery("/identity/users/", { search: name }));
  return data.results.find((user) => user.name === name) ?? null;
}

// The check channel's handshake was refused or the server is down (a browser cannot tell);
// if the token no longer works, stop retrying and ask for a new login.
async function verifySession() {
  try {
    await request("GET", withQuery("/identity/users/", { page_size: 1 }));
  } catch (error) {
    if (error.status === 401) endSession();
  }
}

function leave() {
  usersSocket.stop();
  catalogSocket.stop();
  pageSocket.stop();
  company.stop();
  session.clear();
  me = null;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-name").focus();
}

function endSession(reason = "Your session has ended.") {
  leave();
  showLoginError(`${reason} Please log in again.`);
}

function failed(error) {
  if (error.status === 401) endSession();
  else say(error.message);
}

function showLoginError(message) {
  $("login-error").textContent = message; // an empty alert takes no room (app.css)
}

function say(message) {
  $("status").textContent = message;
}

// --- start -------------------------------------------------------------------------------

if (session.token) {
  enter();
} else {
  $("login").hidden = false;
  $("login-name").focus();
}
