// The REST client: JSON both ways, the session's token, ETags for conditional writes, and
// one readable sentence for every kind of failure.
import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(describe(status, body, retryAfter));
    this.status = status;
    this.body = body;
  }

  // Field errors of a 400 ({"email": ["..."]}), empty for anything else.
  get fieldErrors() {
    const body = this.body;
    return this.status === 400 && body && !Array.isArray(body) && typeof body === "object"
      ? body
      : {};
  }
}

function describe(status, body, retryAfter) {
  const detail = body && typeof body.detail === "string" ? body.detail : null;
  const nonField = body && Array.isArray(body.non_field_errors) ? body.non_field_errors[0] : null;
  switch (status) {
    case 0:
      return "The server could not be reached. Check the connection and try again.";
    case 401:
      return "Your session has ended. Please log in again.";
    case 403:
      return detail || "You are not allowed to do that.";
    case 412:
      return (
        "Someone else changed this record after you opened it, so your changes were not " +
        "saved. Load the latest version, then make your changes again."
      );
    case 429:
      return `Too many requests. Try again in ${retryAfter || "a few"} seconds.`;
    case 502:
    case 503:
    case 504:
      return "The service is briefly unavailable. Try again in a moment.";
    default:
      return nonField || detail || `The request failed (HTTP ${status}).`;
  }
}

// `path?params`, leaving out empty values so that URLs stay short and cache-friendly.
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function request(method, path, { body, ifMatch } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.token) headers.Authorization = `Token ${session.token}`;
  if (ifMatch) headers["If-Match"] = ifMatch;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      // The token is the only credential: sending an admin session cookie along would make
      // DRF demand a CSRF token for every write (session authentication) and mix identities.
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return {
    data,
    etag: response.headers.get("ETag"),
    // The topic's position read before the query: a socket resuming from it misses nothing.
    position: response.headers.get("X-Stream-Position"),
  };
}
