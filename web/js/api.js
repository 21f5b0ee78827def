// api.js — calls to boxd's API from the page.
//
// On TCP the page is logged in with a session cookie (HttpOnly: this
// script never sees it). The CSRF token the login answers with is kept in
// this module's memory only and sent as X-CSRF-Token with every request
// that changes something. The API token itself is sent once, to
// POST /api/v1/session, and never stored.

let csrf = null;
let onLoggedOut = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function whenLoggedOut(fn) { onLoggedOut = fn; }
export function setCsrf(token) { csrf = token || null; }

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
  let r;
  try {
    r = await fetch('/api/v1' + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'boxd does not answer');
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + r.status, message: text || r.statusText };
    if (r.status === 401 && path !== '/session' && onLoggedOut) onLoggedOut();
    throw new ApiError(r.status, err.code, err.message);
  }
  return data;
}

export async function session() { return api('GET', '/session'); }

export async function login(token) {
  const s = await api('POST', '/session', { token });
  setCsrf(s.csrfToken);
  return s;
}

export async function logout() {
  try { await api('DELETE', '/session'); } finally { setCsrf(null); }
}
