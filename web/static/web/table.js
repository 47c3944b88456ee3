// A paged, searchable, filterable table of one REST list (`{count, results}` pages), kept
// current by a live query with exactly the query string shown (search and filters): the server
// says, row by row, what each write did to this list (created, updated, entered, left,
// deleted), and the row appears, changes or disappears in place, highlighted, without the page
// being read again.
import { request, withQuery } from "./api.js";

const SEARCH_DELAY_MS = 300;
// Events arrive in bursts (an import sends one per batch): one refetch answers them all.
const REFETCH_DELAY_MS = 150;

export class PagedTable {
  // columns: [{field, format?(value, row), className?}]; orderBy: the field the list is
  // sorted by (the API's default ordering); canEdit(row) -> bool; onEdit(uuid);
  // onError(ApiError); onQuery(queryString, position): the shown query changed and was read
  // at `position` (the owner follows it live from there).
  constructor(section, { path, columns, orderBy, canEdit, onEdit, onError, onQuery }) {
    this.section = section;
    this.path = path;
    this.columns = columns;
    this.orderBy = orderBy;
    this.onQuery = onQuery;
    this.filters = section.querySelector(".filters");
    this.canEdit = canEdit;
    this.onEdit = onEdit;
    this.onError = onError;
    this.body = section.querySelector("tbody");
    this.empty = section.querySelector(".empty");
    this.info = section.querySelector(".page-info");
    this.previous = section.querySelector('[data-page="previous"]');
    this.next = section.querySelector('[data-page="next"]');
    this.pageSize = section.querySelector('select[name="page_size"]');
    this.search = section.querySelector('input[type="search"]');
    this.page = 1;
    this.count = 0;
    this.rows = new Map(); // uuid -> the row's data, for the page on screen
    this.marks = new Map(); // uuid -> names of other users editing the row
    this.sequence = 0; // only the newest response may render
    this.position = null; // the X-Stream-Position of the page on screen
    this.refetchTimer = null;
    this.searchTimer = null;
    this.bind();
  }

  bind() {
    this.previous.addEventListener("click", () => this.go(this.page - 1));
    this.next.addEventListener("click", () => this.go(this.page + 1));
    this.pageSize.addEventListener("change", () => this.go(1));
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.go(1), SEARCH_DELAY_MS);
    });
    // Enter in the search box searches now rather than after the typing delay.
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        clearTimeout(this.searchTimer);
        this.go(1);
      }
    });
    this.filters?.addEventListener("change", () => this.go(1));
    this.filters?.addEventListener("input", (event) => {
      if (event.target.tagName !== "INPUT") return;
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.go(1), SEARCH_DELAY_MS);
    });
  }

  // The list's query string as shown: search and filters, not paging. A live query follows
  // exactly this, so the rows it reports are the rows this list would hold.
  get query() {
    const params = { search: this.search.value.trim() };
    for (const field of this.filters?.querySelectorAll("[name]") ?? []) {
      params[field.name] = field.value.trim();
    }
    return withQuery("", params).replace(/^\?/, "");
  }

  go(page) {
    this.page = Math.max(1, page);
    return this.load();
  }

  async load() {
    const sequence = ++this.sequence;
    const query = this.query;
    const paging = new URLSearchParams({ page: this.page, page_size: this.pageSize.value });
    const url = `${this.path}?${paging}${query ? `&${query}` : ""}`;
    this.section.setAttribute("aria-busy", "true");
    try {
      const { data, position } = await request("GET", url);
      if (sequence === this.sequence) {
        this.position = position;
        this.render(data);
        this.onQuery?.(query, position);
      }
    } catch (error) {
      if (sequence !== this.sequence) return;
      // The page emptied under us (rows deleted elsewhere): show the first page instead.
      if (error.status === 404 && this.page > 1) return this.go(1);
      this.onError(error);
    } finally {
      if (sequence === this.sequence) this.section.removeAttribute("aria-busy");
    }
  }

  refetchSoon() {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.load(), REFETCH_DELAY_MS);
  }

  render({ count, results }) {
    this.count = count;
    this.rows = new Map(results.map((row) => [row.uuid, row]));
    this.body.replaceChildren(...results.map((row) => this.renderRow(row)));
    this.showCount();
  }

  showCount() {
    this.empty.hidden = this.rows.size > 0;
    const pages = Math.max(1, Math.ceil(this.count / Number(this.pageSize.value)));
    this.info.textContent = `Page ${Math.min(this.page, pages)} of ${pages} · ${this.count} in all`;
    this.previous.disabled = this.page <= 1;
    this.next.disabled = this.page >= pages;
  }

  // One frame of the live query: what a write did to this list.
  live({ type, data }) {
    const action = type.slice(type.indexOf(".") + 1);
    const shown = this.rows.has(data.uuid);
    if (action === "updated" && shown) {
      this.remove(data.uuid, false);
      this.place(data);
    } else if (action === "updated" || action === "created" || action === "entered") {
      if (action !== "updated") this.count += 1;
      this.place(data);
    } else if (action === "left" || action === "deleted") {
      this.count = Math.max(0, this.count - 1);
      if (shown) this.remove(data.uuid, true);
    }
    this.showCount();
  }

  // Put a row where the list's order puts it, if that is on this page.
  place(row) {
    const rows = [...this.rows.values()];
    const key = (r) => String(r[this.orderBy] ?? "");
    const before = (a, b) => key(a).localeCompare(key(b), undefined, { sensitivity: "base" }) < 0;
    const at = rows.findIndex((other) => before(row, other));
    const full = rows.length >= Number(this.pageSize.value);
    const lastPage = this.page * Number(this.pageSize.value) >= this.count;
    // Past the last row of a full page, it belongs to a later page.
    if (at === -1 && full && !lastPage) return;
    // Before the first row of a later page, it belongs to an earlier page.
    if (at === 0 && this.page > 1) return;
    const tr = this.renderRow(row);
    flash(tr);
    const next = at === -1 ? null : this.body.children[at];
    this.body.insertBefore(tr, next);
    rows.splice(at === -1 ? rows.length : at, 0, row);
    this.rows = new Map(rows.map((r) => [r.uuid, r]));
  }

  remove(uuid, fade) {
    this.rows.delete(uuid);
    const tr = this.body.querySelector(`tr[data-uuid="${CSS.escape(uuid)}"]`);
    if (!tr) return;
    if (!fade) return tr.remove();
    tr.classList.add("leaving");
    tr.addEventListener("animationend", () => tr.remove(), { once: true });
  }

  // Redraw the rows on screen, e.g. once category names are known.
  redraw() {
    this.body.replaceChildren(...[...this.rows.values()].map((row) => this.renderRow(row)));
  }

  // Built with textContent only: data from the API is never parsed as HTML.
  renderRow(row) {
    const tr = document.createElement("tr");
    tr.dataset.uuid = row.uuid;
    for (const column of this.columns) {
      const td = document.createElement("td");
      td.dataset.field = column.field;
      if (column.className) td.className = column.className;
      const value = row[column.field];
      td.textContent = column.format ? column.format(value, row) : (value ?? "");
      tr.append(td);
    }
    const actions = document.createElement("td");
    actions.className = "row-actions";
    if (this.canEdit(row)) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.textContent = "Edit";
      // The visible label is short; screen readers hear which row it edits.
      edit.setAttribute("aria-label", `Edit ${row[this.columns[0].field]}`);
      edit.addEventListener("click", () => this.onEdit(row.uuid, edit));
      actions.append(edit);
    }
    tr.append(actions);
    this.showMark(tr);
    return tr;
  }

  // Who else is editing a row (company.js): `mark(uuid, names)`, or `mark(null)` for none.
  mark(uuid, names = []) {
    if (uuid === null) this.marks.clear();
    else this.marks.set(uuid, names);
    for (const tr of this.body.querySelectorAll("tr[data-uuid]")) this.showMark(tr);
  }

  showMark(tr) {
    const names = this.marks.get(tr.dataset.uuid);
    let marker = tr.querySelector(".editing");
    if (!names || !names.length) {
      marker?.remove();
      return;
    }
    if (!marker) {
      marker = document.createElement("span");
      marker.className = "editing";
      tr.querySelector(".row-actions").prepend(marker);
    }
    marker.textContent = `${names.join(", ")} editing`;
  }

  has(uuid) {
    return this.rows.has(uuid);
  }

  // A row changed elsewhere: replace it where it stands, if it is on this page.
  update(row) {
    const current = this.body.querySelector(`tr[data-uuid="${CSS.escape(row.uuid)}"]`);
    if (!current) return false;
    this.rows.set(row.uuid, row);
    const replacement = this.renderRow(row);
    flash(replacement);
    current.replaceWith(replacement);
    return true;
  }
}

function flash(tr) {
  tr.classList.add("flash");
  tr.addEventListener("animationend", () => tr.classList.remove("flash"), { once: true });
}
