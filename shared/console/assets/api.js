// Calls to the HTTP API with the signed-in user's token. Errors become Problem
// objects whose sentence() is what the user reads: never raw JSON.

import { loadConfig, session, signIn } from './auth.js';

/** Problem is a failed API call, from an RFC 9457 problem+json body when there is one. */
export class Problem extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.type = (this.body.type || '').replace('urn:tenantflow:problem:', '');
    this.violations = Array.isArray(this.body.violations) ? this.body.violations : [];
  }

  /** sentence is the problem as one or two plain sentences, with the request id to quote. */
  sentence() {
    const b = this.body;
    let s;
    // With violations the list below says each one in words; the detail would
    // repeat them in the API's terse form ("users 45 > 10").
    if (b.detail && !this.violations.length) s = capital(b.detail);
    else if (b.title) s = capital(b.title);
    else s = statusSentence(this.status);
    s = period(s);
    if (Array.isArray(b.allowed)) {
      s += b.allowed.length ? ` From here the tenant may move to ${b.allowed.join(', ')}.` : ' No further change is possible.';
    }
    if (this.status === 503) s += ' It is safe to try again.';
    if (b.request_id) s += ` (Request id ${b.request_id}.)`;
    return s;
  }
}

function capital(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }
function period(s) { return /[.!?)]$/.test(s) ? s : s + '.'; }

function statusSentence(status) {
  switch (status) {
    case 0: return 'The API could not be reached; check the network and try again';
    case 401: return 'Your sign-in has expired';
    case 403: return 'Your sign-in does not allow this';
    case 404: return 'This does not exist, or it is not visible to you';
    case 409: return 'This conflicts with the current state; reload and look again';
    case 429: return 'Too many requests; wait a moment and try again';
    case 502: case 504: return 'The API did not answer in time';
    default: return status >= 500 ? `The API failed (HTTP ${status})` : `The request was refused (HTTP ${status})`;
  }
}

/** violationSentence renders one usage violation of a 422. */
export function violationSentence(v) {
  const names = { users: 'Users', storage_gb: 'Storage (GB)', api_calls_per_month: 'API calls per month' };
  return `${names[v.limit] || v.limit}: ${Number(v.usage).toLocaleString()} in use, the plan allows ${Number(v.max).toLocaleString()}.`;
}

/**
 * api calls the HTTP API. opts: body (JSON), idempotencyKey, signal, raw (return the
 * text as well). A 401 starts a new sign-in that comes back to this page.
 */
export async function api(method, path, opts = {}) {
  const cfg = await loadConfig();
  const s = session();
  if (!s) {
    await signIn(location.pathname.slice(cfg.console_base.length) + location.search);
  }
  const headers = { Authorization: `Bearer ${s.access_token}`, Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey;
  let res;
  try {
    res = await fetch(cfg.api_base + path, {
      method, headers, signal: opts.signal, cache: 'no-store',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Problem(0, null);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.status === 401) {
    sessionStorage.removeItem('tenantflow.console.session');
    await signIn(location.pathname.slice(cfg.console_base.length) + location.search);
  }
  if (!res.ok) throw new Problem(res.status, data);
  return opts.raw ? { data, text, status: res.status } : data;
}
