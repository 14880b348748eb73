// Sign-in: OpenID Connect authorization code flow with PKCE (S256), endpoints from
// the issuer's discovery document. The console is a public client: no secret, the
// code verifier proves that the browser that asked for the code is the one that
// redeems it. The access token lives in sessionStorage (this tab only, gone when
// it closes); nothing is kept in localStorage or cookies.

const SESSION = 'tenantflow.console.session';
const PENDING = 'tenantflow.console.pending';
const SIGNED_OUT = 'tenantflow.console.signedout';

let config;
let discovery;

/** loadConfig reads /console/config.json (next to the versioned assets) once. */
export async function loadConfig() {
  if (config) return config;
  const res = await fetch(new URL('../../config.json', import.meta.url), { cache: 'no-cache' });
  if (!res.ok) throw new Error(`The console configuration could not be read (HTTP ${res.status}).`);
  config = await res.json();
  return config;
}

/** loadDiscovery reads the issuer's metadata and checks it names the configured issuer. */
export async function loadDiscovery() {
  if (discovery) return discovery;
  const cfg = await loadConfig();
  let res;
  try {
    res = await fetch(cfg.discovery_url, { cache: 'no-cache' });
  } catch {
    throw new Error(`The identity provider at ${cfg.discovery_url} could not be reached.`);
  }
  if (!res.ok) throw new Error(`The identity provider's discovery document answered HTTP ${res.status}.`);
  const d = await res.json();
  if (d.issuer !== cfg.issuer) {
    throw new Error(`The identity provider says it is ${d.issuer}, but the API trusts ${cfg.issuer}.`);
  }
  if (!d.authorization_endpoint || !d.token_endpoint) throw new Error('The identity provider publishes no authorization or token endpoint.');
  discovery = d;
  return d;
}

/** session returns the signed-in session, or null when there is none or it expired. */
export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION) || 'null');
    if (s && s.access_token && s.expires_at > Date.now() + 10_000) return s;
  } catch { /* a damaged entry is no session */ }
  return null;
}

export function wasSignedOut() { return sessionStorage.getItem(SIGNED_OUT) === '1'; }

function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n = 32) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }

function redirectURI(cfg) { return location.origin + cfg.console_base + '/callback'; }

/**
 * signIn starts the authorization code flow: it keeps state, the PKCE verifier and
 * where to come back to in sessionStorage, then leaves for the issuer.
 * loginHint is passed on as login_hint (the local issuer reads "tenant:<id>").
 */
export async function signIn(returnTo, loginHint) {
  const cfg = await loadConfig();
  const d = await loadDiscovery();
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier, returnTo: returnTo || '/' }));
  sessionStorage.removeItem(SIGNED_OUT);
  const u = new URL(d.authorization_endpoint);
  u.searchParams.set('response_type', 'code');
  u.searchParams.set('client_id', cfg.client_id);
  u.searchParams.set('redirect_uri', redirectURI(cfg));
  u.searchParams.set('scope', cfg.scopes);
  u.searchParams.set('state', state);
  u.searchParams.set('code_challenge', challenge);
  u.searchParams.set('code_challenge_method', 'S256');
  if (loginHint) u.searchParams.set('login_hint', loginHint);
  location.assign(u.toString());
  return new Promise(() => {}); // the page is leaving
}

/**
 * completeSignIn redeems ?code= at the token endpoint with the verifier and stores
 * the session. It returns the path to go back to, or throws an Error whose message
 * is a sentence for the user.
 */
export async function completeSignIn(params) {
  const cfg = await loadConfig();
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  if (params.get('error')) {
    throw new Error(`The identity provider refused the sign-in: ${params.get('error_description') || params.get('error')}.`);
  }
  if (!pending || !params.get('state') || params.get('state') !== pending.state) {
    throw new Error('This sign-in answer does not belong to a sign-in started in this tab; sign in again.');
  }
  const d = await loadDiscovery();
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code: params.get('code') || '', redirect_uri: redirectURI(cfg),
    client_id: cfg.client_id, code_verifier: pending.verifier,
  });
  const res = await fetch(d.token_endpoint, {
    method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
  });
  const tok = await res.json().catch(() => ({}));
  if (!res.ok || !tok.access_token) {
    throw new Error(`The identity provider did not issue a token: ${tok.error_description || tok.error || 'HTTP ' + res.status}.`);
  }
  const claims = decodeClaims(tok.access_token);
  const expiresAt = tok.expires_in ? Date.now() + tok.expires_in * 1000 : (claims.exp || 0) * 1000;
  sessionStorage.setItem(SESSION, JSON.stringify({
    access_token: tok.access_token, expires_at: expiresAt,
    sub: claims.sub || '', tenant_id: claims.tenant_id || '', scope: claims.scope || '',
  }));
  return pending.returnTo;
}

/** decodeClaims reads a JWT's payload for display only; the API verifies the token. */
export function decodeClaims(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(part);
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

/** isAdmin tells an operator session from a tenant's own. */
export function isAdmin(s) { return !!s && s.scope.split(' ').includes('tenants/admin'); }

/** signOut forgets the token, and ends the issuer's session when it offers that. */
export async function signOut() {
  sessionStorage.removeItem(SESSION);
  sessionStorage.setItem(SIGNED_OUT, '1');
  const cfg = await loadConfig();
  const d = await loadDiscovery().catch(() => null);
  if (d && d.end_session_endpoint) {
    const u = new URL(d.end_session_endpoint);
    u.searchParams.set('client_id', cfg.client_id);
    u.searchParams.set('post_logout_redirect_uri', location.origin + cfg.console_base + '/signed-out');
    location.assign(u.toString());
    return new Promise(() => {});
  }
}

/** tenantHints reports whether the issuer signs in as a chosen tenant (the local one does). */
export async function tenantHints() {
  const d = await loadDiscovery().catch(() => null);
  return !!(d && d.login_hint_tenant_supported);
}
