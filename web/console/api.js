// The consoles' access to the HTTP API: the signed-in session, JSON requests with its bearer
// token, and a WebSocket that reconnects by itself.

const STORE = 'crest.session';

/** The signed-in session `{tenant, agent, role, token}` (kept for this tab only), or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    return null;
  }
}

export function saveSession(value) {
  if (value) sessionStorage.setItem(STORE, JSON.stringify(value));
  else sessionStorage.removeItem(STORE);
}

/** An error answer of the API: `status`, `code` and the server's `reason`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.reason || body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

/** Signs in with a seat's password: `POST /v1/tenants/{t}/sessions`. */
export async function login(tenant, agent, password) {
  const answer = await request('POST', `/v1/tenants/${enc(tenant)}/sessions`, { agent, password }, null);
  const value = { tenant, agent, role: answer.role || 'agent', token: answer.token };
  saveSession(value);
  return value;
}

/** Signs in with an API key (admins): checked by reading the key list. */
export async function loginWithKey(tenant, key) {
  await request('GET', `/v1/tenants/${enc(tenant)}/api-keys`, undefined, key);
  const value = { tenant, agent: null, role: 'admin', token: key };
  saveSession(value);
  return value;
}

export const enc = encodeURIComponent;

/** `/v1/tenants/{tenant}` + `rest`, for the signed-in tenant. */
export function tenantPath(rest) {
  return `/v1/tenants/${enc(session().tenant)}${rest}`;
}

/** A JSON request with the session's token; resolves to the parsed answer or throws ApiError. */
export function call(method, path, body) {
  return request(method, path, body, session()?.token);
}

async function request(method, path, body, token) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { reason: text };
  }
  if (!response.ok) {
    if (response.status === 401 && token && token === session()?.token) {
      saveSession(null);
      window.dispatchEvent(new Event('crest:signed-out'));
    }
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

/** A fresh idempotency id for a message. */
export function newId(prefix) {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${prefix}-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}

/**
 * A WebSocket to `path` (the token goes in `access_token`, browsers cannot set headers there)
 * that reconnects after a drop with a growing pause (0.5 s to 10 s). `pathFor()` is asked again
 * at each connection, so a caller can resume from what it has seen (`?after=SEQ`).
 * `onFrame(json)` gets each frame, `onState('open' | 'closed')` the connection's state.
 * Returns `{close()}`.
 */
export function liveSocket(pathFor, onFrame, onState) {
  let socket = null;
  let stopped = false;
  let pause = 500;
  let timer = null;
  const open = () => {
    if (stopped) return;
    const path = pathFor();
    const separator = path.includes('?') ? '&' : '?';
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}${separator}access_token=${enc(session()?.token || '')}`;
    socket = new WebSocket(url);
    socket.onopen = () => {
      pause = 500;
      onState?.('open');
    };
    socket.onmessage = (message) => {
      try {
        onFrame(JSON.parse(message.data));
      } catch (error) {
        console.error('bad frame', error);
      }
    };
    socket.onclose = () => {
      onState?.('closed');
      if (stopped) return;
      timer = setTimeout(open, pause);
      pause = Math.min(pause * 2, 10000);
    };
  };
  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}
