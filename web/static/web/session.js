// The signed-in session: the API token and the name it was issued for. Kept in
// sessionStorage, so it lasts as long as the tab and never leaves the browser except in the
// Authorization header (sockets open with one-use tickets instead: see app.js).
const KEY = "myproject.session";

function read() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || {};
  } catch {
    return {};
  }
}

export const session = {
  get token() {
    return read().token || null;
  },
  get name() {
    return read().name || null;
  },
  save(token, name) {
    sessionStorage.setItem(KEY, JSON.stringify({ token, name }));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};
