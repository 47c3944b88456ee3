// A paged, searchable table of one REST list (`{count, results}` pages), kept current by the
// change events: an updated row is replaced in place, anything that moves rows between pages
// (a creation, a deletion, a bulk write) refetches the page being shown.
import { request, withQuery } from "./api.js";

const SEARCH_DELAY_MS = 300;
// Events arrive in bursts (an import sends one per batch): one refetch answers them all.
const REFETCH_DELAY_MS = 150;

export class PagedTable {
  // columns: [{field, format?(value, row), className?}]; canEdit(row) -> bool;
  // onEdit(uuid); onError(ApiError).
  constructor(section, { path, columns, canEdit, onEdit, onError }) {
    this.section = section;
    this.path = path;
    this.columns = columns;
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
    this.fresh = new Set(); // uuids to highlight when they next appear
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
  }

  go(page) {
    this.page = Math.max(1, page);
    return this.load();
  }

  async load() {
    const sequence = ++this.sequence;
    const url = withQuery(this.path, {
      search: this.search.value.trim(),
      page: this.page,
      page_size: this.pageSize.value,
    });
    this.section.setAttribute("aria-busy", "true");
    try {
      const { data, position } = await request("GET", url);
      if (sequence === this.sequence) {
        this.position = position;
        this.render(data);
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
    this.fresh.clear();
    this.empty.hidden = results.length > 0;
    const pages = Math.max(1, Math.ceil(count / Number(this.pageSize.value)));
    this.info.textContent = `Page ${this.page} of ${pages} · ${count} in all`;
    this.previous.disabled = this.page <= 1;
    this.next.disabled = this.page >= pages;
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
    if (this.fresh.delete(row.uuid)) flash(tr);
    return tr;
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

  highlightNext(uuid) {
    this.fresh.add(uuid);
  }
}

function flash(tr) {
  tr.classList.add("flash");
  tr.addEventListener("animationend", () => tr.classList.remove("flash"), { once: true });
}
