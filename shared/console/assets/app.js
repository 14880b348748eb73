// The console's entry point: sign-in handling, the header, and a small router that
// maps the path below /console to a view. Each view renders into a fresh
// <main data-view="..."> and stops its polling when the user navigates away.

import { h } from './dom.js';
import { completeSignIn, isAdmin, loadConfig, session, signIn, signOut, tenantHints, wasSignedOut } from './auth.js';
import { views } from './views.js';

let cfg;
let current = null; // AbortController of the view on screen
let moveFocus = false;

const routes = [
  [/^\/?$/, 'overview'],
  [/^\/tenants\/?$/, 'tenants'],
  [/^\/tenants\/([^/]+)\/exports\/?$/, 'exports'],
  [/^\/tenants\/([^/]+)\/certificate\/?$/, 'certificate'],
  [/^\/tenants\/([^/]+)\/?$/, 'tenant'],
  [/^\/operations\/([^/]+)\/?$/, 'operation'],
];

/** href turns a console path ("/tenants/x") into a URL path. */
export function href(p) { return p === '/' ? cfg.console_base : cfg.console_base + p; }

/** navigate shows another console path without reloading the page. */
export function navigate(p, opts = {}) {
  history[opts.replace ? 'replaceState' : 'pushState'](null, '', href(p));
  moveFocus = true;
  render();
}

function relPath() {
  const p = location.pathname.startsWith(cfg.console_base) ? location.pathname.slice(cfg.console_base.length) : '/';
  return p || '/';
}

function replaceMain(view, attrs = {}) {
  const main = h('main', { id: 'main', 'data-view': view, 'aria-busy': 'true', tabindex: '-1', ...attrs });
  document.getElementById('main').replaceWith(main);
  return main;
}

function signInPage(view, title, message) {
  current?.abort();
  const main = replaceMain(view);
  main.append(
    h('h1', { tabindex: '-1' }, title),
    message ? h('p', { role: 'alert', 'data-testid': 'problem', class: 'problem' }, message) : null,
    h('p', {}, h('button', { type: 'button', testid: 'signin', class: 'primary', on: { click: () => signIn('/') } }, 'Sign in')));
  main.setAttribute('aria-busy', 'false');
}

function onLinkClick(e) {
  const a = e.target.closest('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  moveFocus = true;
  render();
}

async function renderHeader() {
  const s = session();
  const top = document.getElementById('top');
  const admin = isAdmin(s);
  const nav = h('nav', { 'aria-label': 'Main' },
    admin ? [h('a', { href: href('/'), 'data-link': true, testid: 'nav-overview' }, 'Overview'),
      h('a', { href: href('/tenants'), 'data-link': true, testid: 'nav-tenants' }, 'Tenants')]
      : h('a', { href: href(`/tenants/${s.tenant_id}`), 'data-link': true, testid: 'nav-tenant' }, 'My tenant'));
  const who = h('span', { class: 'who' }, 'Signed in as ',
    h('strong', { testid: 'whoami' }, admin ? (s.sub || 'operator') : `tenant ${s.tenant_id}`));
  const controls = h('div', { class: 'account' }, who);
  if (await tenantHints()) {
    // Only an issuer that signs in as a chosen tenant (the local one) gets the switch;
    // the tenant's own token is then used, so the API decides what it may see.
    const input = h('input', { id: 'view-as', testid: 'view-as-tenant', name: 'tenant', placeholder: 'tenant_acme', pattern: '[a-z0-9][a-z0-9_\\-]{2,63}', required: true, autocomplete: 'off', size: 14 });
    const form = h('form', { class: 'view-as', on: { submit: (e) => { e.preventDefault(); if (input.reportValidity()) signIn(`/tenants/${input.value}`, `tenant:${input.value}`); } } },
      h('label', { for: 'view-as' }, 'View as tenant'), input,
      h('button', { type: 'submit', testid: 'view-as-submit' }, 'Switch'));
    controls.append(admin ? form : h('button', { type: 'button', testid: 'view-as-operator', on: { click: () => signIn('/', 'operator') } }, 'Back to operator'));
  }
  controls.append(h('button', {
    type: 'button', testid: 'signout',
    on: { click: async () => { await signOut(); signInPage('signedout', 'Signed out', null); renderSignedOutHeader(); } },
  }, 'Sign out'));
  top.replaceChildren(h('a', { class: 'brand', href: href('/'), 'data-link': true }, 'tenantflow console'), nav, controls);
}

function renderSignedOutHeader() {
  document.getElementById('top').replaceChildren(h('span', { class: 'brand' }, 'tenantflow console'));
}

/** render shows the view of the current URL, ending the previous view's polling. */
export function render() {
  current?.abort();
  current = new AbortController();
  const s = session();
  const path = relPath();
  if (!s) {
    signIn(path + location.search);
    return;
  }
  let view = 'notfound';
  let arg;
  for (const [re, name] of routes) {
    const m = path.match(re);
    if (m) { view = name; arg = m[1] && decodeURIComponent(m[1]); break; }
  }
  const attrs = {};
  if (view === 'operation') attrs['data-operation-id'] = arg;
  else if (arg) attrs['data-tenant-id'] = arg;
  const main = replaceMain(view, attrs);
  const ctx = {
    main, signal: current.signal, session: s, admin: isAdmin(s), query: new URLSearchParams(location.search),
    href, navigate, render, done: () => main.setAttribute('aria-busy', 'false'),
  };
  const focus = moveFocus;
  moveFocus = false;
  const fn = views[view] || views.notfound;
  Promise.resolve(fn(ctx, arg)).catch((e) => {
    if (e && e.name === 'AbortError') return;
    main.append(h('p', { role: 'alert', testid: 'problem', class: 'problem' }, e && e.sentence ? e.sentence() : String(e && e.message || e)));
  }).finally(() => {
    if (!ctx.signal.aborted) ctx.done();
    if (focus && !ctx.signal.aborted) (main.querySelector('h1') || main).focus();
  });
}

async function boot() {
  try {
    cfg = await loadConfig();
  } catch (e) {
    signInPage('error', 'The console cannot start', e.message);
    return;
  }
  const params = new URLSearchParams(location.search);
  const path = relPath();
  try {
    if (path === '/callback') {
      const back = await completeSignIn(params);
      history.replaceState(null, '', href(back));
    } else if (params.get('login_hint')) {
      const hint = params.get('login_hint');
      params.delete('login_hint');
      const rest = params.toString();
      await signIn(path + (rest ? `?${rest}` : ''), hint);
      return;
    } else if (path === '/signed-out' || (!session() && wasSignedOut())) {
      signInPage('signedout', 'Signed out', null);
      return;
    } else if (!session()) {
      await signIn(path + location.search);
      return;
    }
  } catch (e) {
    signInPage('signin-error', 'Sign-in failed', e.message);
    return;
  }
  document.addEventListener('click', onLinkClick);
  window.addEventListener('popstate', () => render());
  await renderHeader();
  render();
}

boot();
