// The JSON API of hostd (docs/http-api.md), as the page uses it: every call
// goes to the server that served the page; errors become ApiError with the
// server's message. The token (header field) is sent as a Bearer token,
// which hostd requires for changes when it listens beyond loopback.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function token() {
  return localStorage.getItem('obs.token') || '';
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'hostd does not answer (' + e.message + ')');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const msg = (json && json.error && json.error.message) || text || res.statusText;
    throw new ApiError(res.status, `${res.status}: ${msg}`, json);
  }
  return json;
}

// The endpoint list (GET /api/v1), fetched once: tells which optional
// endpoints (experiments) this hostd has, without a request that 404s.
let endpoints = null;
export async function hasEndpoint(path) {
  if (!endpoints) {
    try {
      const j = await api('/api/v1');
      endpoints = new Set(j.endpoints.map((e) => e.path));
    } catch {
      return true; // unknown: let the caller try and handle a 404
    }
  }
  return endpoints.has(path);
}
