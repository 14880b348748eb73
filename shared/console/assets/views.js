// The console's views. Each takes the view context (main element, abort signal,
// session, navigation) and renders what the API answers; views that show work in
// progress poll until it ends or the user leaves.

import { h, fill, time, ago, duration, bytes, num, sleep, section, table } from './dom.js';
import { api, Problem } from './api.js';
import { openAction } from './actions.js';

export const STATES = ['PROVISIONING', 'ACTIVE', 'UPGRADING', 'DOWNGRADING', 'SUSPENDED', 'DELETING', 'DELETED', 'REACTIVATING', 'PURGED'];
export const PLANS = ['free', 'starter', 'professional', 'enterprise'];
const TERMINAL = new Set(['SUCCEEDED', 'FAILED']);

function link(ctx, path, text, attrs = {}) {
  return h('a', { href: ctx.href(path), 'data-link': true, ...attrs }, text);
}
function opLink(ctx, id, attrs = {}) { return link(ctx, `/operations/${id}`, h('code', {}, id), attrs); }
function tenantLink(ctx, id, attrs = {}) { return link(ctx, `/tenants/${id}`, id, attrs); }
function badge(state, attrs = {}) { return h('span', { class: `badge s-${String(state).toLowerCase()}`, ...attrs }, state); }
function title(ctx, text, ...rest) { ctx.main.append(h('h1', { tabindex: '-1' }, text, ...rest)); }
function problemNote(e) {
  return h('p', { role: 'alert', testid: 'problem', class: 'problem' }, e instanceof Problem ? e.sentence() : String(e.message || e));
}
/** optional runs an API read whose failure only blanks one section. */
async function optional(p) {
  try { return { data: await p }; } catch (e) { if (e.name === 'AbortError') throw e; return { error: e }; }
}
function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v, testid]) => [h('dt', {}, k), h('dd', { testid }, v)]));
}

// ---------------------------------------------------------------- overview

async function overview(ctx) {
  if (!ctx.admin) { ctx.navigate(`/tenants/${ctx.session.tenant_id}`, { replace: true }); return; }
  const { signal } = ctx;
  title(ctx, 'Overview');
  const body = h('div');
  ctx.main.append(body, h('p', { class: 'hint' }, 'Refreshes every 10 seconds.'));
  let last = '';
  while (!signal.aborted) {
    const [stats, attention, running] = await Promise.all([
      api('GET', '/stats', { signal }),
      api('GET', '/operations?status=needs_attention&limit=50', { signal }),
      api('GET', '/operations?status=running&limit=20', { signal }),
    ]);
    const runOps = running.operations || [];
    const steps = await Promise.all(runOps.slice(0, 10).map((op) => api('GET', `/operations/${op.operation_id}/steps`, { signal }).catch(() => null)));
    const key = JSON.stringify([stats, attention, running, steps]);
    if (key !== last) {
      last = key;
      fill(body, ...overviewBody(ctx, stats, attention.operations || [], runOps, steps));
      ctx.done();
    }
    await sleep(10000, signal);
  }
}

function currentStep(st) {
  if (!st || !st.steps || !st.steps.length) return '—';
  const open = st.steps.filter((s) => !s.ended_at);
  return (open.length ? open[open.length - 1] : st.steps[st.steps.length - 1]).name;
}

function overviewBody(ctx, stats, attention, running, steps) {
  const byState = stats.tenants_by_state || {};
  const ops = stats.operations || {};
  const cards = h('ul', { class: 'cards', 'aria-label': 'Tenants by state' }, STATES.map((s) => h('li', {},
    link(ctx, `/tenants?state=${s}`, [h('span', { class: 'count', testid: `stat-${s}` }, String(byState[s] ?? 0)), h('span', { class: 'label' }, s)]))));
  const opCards = h('ul', { class: 'cards', 'aria-label': 'Operations' }, [
    ['running', 'running'], ['needs_attention', 'need attention'], ['scheduled', 'scheduled'],
  ].map(([k, label]) => h('li', { class: k === 'needs_attention' && ops[k] ? 'alert' : '' },
    h('span', { class: 'count', testid: `stat-ops-${k}` }, String(ops[k] ?? 0)), h('span', { class: 'label' }, `operations ${label}`))));
  return [
    section('Tenants by state', cards),
    section('Operations', opCards),
    section('Needs attention',
      h('p', { class: 'hint' }, 'Failed operations whose compensation is incomplete: the tenant takes no other change until someone retries or resolves them.'),
      table('Needs attention', ['Operation', 'Tenant', 'Kind', 'Not undone', 'Error', 'Since'], attention.map((op) => h('tr', { testid: 'attention-row', dataset: { operationId: op.operation_id, tenantId: op.tenant_id } },
        h('td', {}, opLink(ctx, op.operation_id)), h('td', {}, tenantLink(ctx, op.tenant_id)), h('td', {}, op.kind),
        h('td', {}, (op.compensation_incomplete || []).join(', ') || '—'), h('td', {}, op.error || '—'), h('td', {}, ago(op.updated_at)))),
      'Nothing needs attention.')),
    section('Running now',
      table('Running operations', ['Operation', 'Tenant', 'Kind', 'Current step', 'Running for'], running.map((op, i) => h('tr', { testid: 'running-row', dataset: { operationId: op.operation_id, tenantId: op.tenant_id } },
        h('td', {}, opLink(ctx, op.operation_id)), h('td', {}, tenantLink(ctx, op.tenant_id)), h('td', {}, op.kind),
        h('td', { testid: 'running-step' }, i < steps.length ? currentStep(steps[i]) : '—'), h('td', {}, ago(op.created_at)))),
      'No operation is running.')),
    section('Coming up',
      table('Upcoming changes and purges', ['Due', 'What', 'Tenant', 'Operation'], (stats.upcoming || []).map((u) => h('tr', { testid: 'upcoming-row', dataset: { tenantId: u.tenant_id, kind: u.kind } },
        h('td', {}, time(u.due_at)), h('td', {}, u.kind === 'purge' ? 'purge (retention ends)' : 'period-end plan change'),
        h('td', {}, tenantLink(ctx, u.tenant_id)), h('td', {}, u.operation_id ? opLink(ctx, u.operation_id) : '—'))),
      'Nothing is due.')),
  ];
}

// ---------------------------------------------------------------- tenants

async function tenants(ctx) {
  if (!ctx.admin) { ctx.navigate(`/tenants/${ctx.session.tenant_id}`, { replace: true }); return; }
  const state = STATES.includes(ctx.query.get('state')) ? ctx.query.get('state') : 'ACTIVE';
  title(ctx, 'Tenants');
  const select = h('select', { id: 'f-state', testid: 'tenants-state', on: { change: () => ctx.navigate(`/tenants?state=${select.value}`) } },
    STATES.map((s) => h('option', { value: s, selected: s === state }, s)));
  const find = h('input', { id: 'f-find', testid: 'tenant-find', name: 'id', required: true, autocomplete: 'off', pattern: '[a-z0-9][a-z0-9_\\-]{2,63}', placeholder: 'tenant_acme' });
  ctx.main.append(h('div', { class: 'toolbar' },
    h('div', { class: 'field inline' }, h('label', { for: 'f-state' }, 'State'), select),
    h('form', { class: 'field inline', on: { submit: (e) => { e.preventDefault(); if (find.reportValidity()) ctx.navigate(`/tenants/${find.value.trim()}`); } } },
      h('label', { for: 'f-find' }, 'Find tenant by id'), find, h('button', { type: 'submit', testid: 'tenant-find-submit' }, 'Open'))));
  const tbody = h('tbody');
  const more = h('button', { type: 'button', testid: 'tenants-more', hidden: true }, 'Load more');
  ctx.main.append(h('div', { class: 'scroll' }, h('table', { 'aria-label': `Tenants in ${state}` },
    h('thead', {}, h('tr', {}, ['Tenant', 'Name', 'Plan', 'State', 'Time in state', 'Operation'].map((x) => h('th', { scope: 'col' }, x)))), tbody)), more);
  const load = async (cursor) => {
    const page = await api('GET', `/tenants?state=${state}&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal: ctx.signal });
    for (const t of page.tenants) {
      tbody.append(h('tr', { testid: 'tenant-row', dataset: { tenantId: t.id } },
        h('td', {}, tenantLink(ctx, t.id)), h('td', {}, t.name || '—'), h('td', {}, t.plan), h('td', {}, badge(t.state)),
        // updated_at is the tenant record's last write: a state change, a plan change or usage.
        h('td', { testid: 'time-in-state', title: 'since the tenant record last changed' }, ago(t.updated_at)),
        h('td', {}, t.attention_operation_id ? [badge('NEEDS ATTENTION'), ' ', opLink(ctx, t.attention_operation_id)] : t.operation_id ? opLink(ctx, t.operation_id) : '—')));
    }
    if (!tbody.children.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, `No tenant is ${state}.`)));
    more.hidden = !page.next_cursor;
    more.onclick = () => load(page.next_cursor).catch((e) => ctx.main.append(problemNote(e)));
  };
  await load(null);
}

// ---------------------------------------------------------------- tenant

const METRICS = [['users', 'Users'], ['storage_gb', 'Storage (GB)'], ['api_calls_per_month', 'API calls this month']];

function usageBars(t) {
  return h('div', { class: 'usage' }, METRICS.map(([k, label]) => {
    const used = t.usage ? t.usage[k] ?? 0 : 0;
    const max = t.limits ? t.limits[k] : null;
    const id = `m-${k}`;
    const over = max !== null && max !== undefined && used > max;
    return h('div', { class: 'metric' + (over ? ' over' : '') },
      h('label', { for: id }, label, ': ', h('strong', {}, num(used)), ' of ', max === null || max === undefined ? 'unlimited' : num(max)),
      h('meter', { id, testid: `usage-${k}`, min: 0, max: max ?? Math.max(used, 1), value: used, high: (max ?? Math.max(used, 1)) * 0.8, optimum: 0 }));
  }));
}

function actionBar(ctx, t) {
  const admin = ctx.admin;
  const s = t.state;
  const act = (kind, label, enabled, extra = {}) => h('button', {
    type: 'button', testid: `action-${kind}`, disabled: !enabled, class: kind === 'delete' ? 'danger' : '',
    on: { click: () => openAction(ctx, kind, t, extra) },
  }, label);
  const top = PLANS.indexOf(t.plan);
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' },
    act('upgrade', 'Upgrade', s === 'ACTIVE' && top < PLANS.length - 1),
    act('downgrade', 'Downgrade', s === 'ACTIVE' && top > 0),
    admin ? act('suspend', 'Suspend', s === 'ACTIVE') : null,
    act('reactivate', 'Reactivate', (admin && s === 'SUSPENDED') || s === 'DELETED'),
    act('delete', 'Delete', s === 'ACTIVE' || s === 'SUSPENDED'),
    act('export', 'Export data', s !== 'PURGED' && s !== 'PROVISIONING'));
}

async function tenant(ctx, id) {
  const { signal } = ctx;
  let first = true;
  while (!signal.aborted) {
    const t = await api('GET', `/tenants/${encodeURIComponent(id)}`, { signal });
    const [audit, ops, ent] = await Promise.all([
      optional(api('GET', `/tenants/${id}/audit`, { signal })),
      optional(api('GET', `/operations?tenant_id=${id}&limit=10`, { signal })),
      optional(api('GET', `/tenants/${id}/entitlements`, { signal })),
    ]);
    const focused = document.activeElement && ctx.main.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    fill(ctx.main, ...tenantBody(ctx, t, audit, ops, ent));
    if (focused) ctx.main.querySelector(`[data-testid="${focused}"]`)?.focus();
    if (first) { ctx.done(); first = false; }
    // A tenant that a flow holds changes soon: follow it.
    if (!t.operation_id) return;
    await sleep(2000, signal);
  }
}

function tenantBody(ctx, t, audit, ops, ent) {
  const out = [h('h1', { tabindex: '-1' }, t.id, ' ', badge(t.state, { testid: 'tenant-state' }))];
  if (t.attention_operation_id) {
    out.push(h('p', { class: 'banner alert', role: 'status' }, 'An operation needs attention: its compensation is incomplete and no other change starts until it is retried or resolved. ',
      opLink(ctx, t.attention_operation_id, { testid: 'tenant-attention' })));
  }
  if (t.operation_id) {
    out.push(h('p', { class: 'banner', role: 'status' }, 'A flow is moving this tenant now: ', opLink(ctx, t.operation_id, { testid: 'tenant-current-operation' })));
  }
  const pc = t.pending_change;
  out.push(dl([
    ['Name', t.name || '—'],
    ['Plan', h('strong', {}, t.plan), 'tenant-plan'],
    ['State since', [time(t.updated_at), ` (${ago(t.updated_at)} ago)`]],
    ['Pending change', pc ? [`to ${pc.plan} at `, time(pc.effective_at), ' ', pc.operation_id ? opLink(ctx, pc.operation_id) : null] : 'none', 'tenant-pending-change'],
    t.suspend_cause ? ['Suspended', `${t.suspend_cause}${t.suspend_reason ? `: ${t.suspend_reason}` : ''}`, 'tenant-suspend-reason'] : null,
    t.deleted_at ? ['Deleted at', time(t.deleted_at), 'tenant-deleted-at'] : null,
    t.purge_after ? ['Purge after', [time(t.purge_after), t.state === 'DELETED' ? ` (in ${ago(new Date().toISOString(), new Date(t.purge_after).getTime())})` : ''], 'tenant-purge-after'] : null,
    ['Created', time(t.created_at)],
  ]));
  out.push(actionBar(ctx, t));
  out.push(h('p', { class: 'links' }, link(ctx, `/tenants/${t.id}/exports`, 'Data exports', { testid: 'link-exports' }),
    ctx.admin && t.state === 'PURGED' ? [' · ', link(ctx, `/tenants/${t.id}/certificate`, 'Deletion certificate', { testid: 'link-certificate' })] : null));
  out.push(section('Usage against the plan', usageBars(t)));
  out.push(section('Entitlements', ent.error ? h('p', { class: 'empty', testid: 'entitlements' }, ent.error.status === 404 ? 'No entitlements are published for this tenant.' : ent.error.sentence?.() || String(ent.error))
    : h('div', { testid: 'entitlements' }, entitlementsView(ent.data))));
  out.push(section('Subscription', dl([
    ['Plan billed', t.plan],
    ['Billing standing', t.suspend_cause === 'nonpayment' ? 'unpaid: suspended until Stripe reports a paid invoice' : t.suspend_cause === 'canceled' ? 'subscription canceled at Stripe' : t.state === 'PURGED' ? 'customer deleted' : 'in good standing as far as Stripe has told us'],
    ['Scheduled plan change', pc ? `${pc.plan} at the end of the period` : 'none'],
  ])));
  out[out.length - 1].dataset.testid = 'subscription';
  out.push(section('Operations', ops.error ? problemNote(ops.error)
    : table('Operations of the tenant', ['Operation', 'Kind', 'Status', 'Plans', 'Started', 'Updated'], (ops.data.operations || []).map((op) => h('tr', { testid: 'operation-row', dataset: { operationId: op.operation_id } },
      h('td', {}, opLink(ctx, op.operation_id)), h('td', {}, op.kind), h('td', {}, badge(op.status), op.needs_attention ? [' ', badge('NEEDS ATTENTION')] : null),
      h('td', {}, op.from_plan || op.to_plan ? `${op.from_plan || '?'} → ${op.to_plan || '?'}` : '—'), h('td', {}, time(op.created_at)), h('td', {}, time(op.updated_at)))),
    'No operations.')));
  out.push(section('Audit trail', audit.error ? problemNote(audit.error) : h('ol', { class: 'timeline', reversed: true },
    (audit.data.entries || []).slice().reverse().map((e) => h('li', { testid: 'audit-entry' },
      h('div', { class: 'when' }, time(e.at)),
      h('div', {}, e.from ? [badge(e.from), ' → '] : 'created ', badge(e.to), e.operation_id ? [' ', opLink(ctx, e.operation_id)] : null),
      e.who || e.reason ? h('div', { class: 'hint' }, [e.who ? `by ${e.who}` : '', e.reason ? `: ${e.reason}` : ''].join('')) : null)))));
  return out;
}

function entitlementsView(e) {
  if (!e) return 'None.';
  const rows = [];
  if (e.plan) rows.push(['Plan', e.plan]);
  if (e.access) rows.push(['Access', e.access]);
  for (const [k, v] of Object.entries(e.limits || {})) rows.push([`Limit ${k}`, v === null || v < 0 ? 'unlimited' : num(v)]);
  for (const [k, v] of Object.entries(e.features || {})) rows.push([`Feature ${k}`, typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)]);
  if (e.version !== undefined) rows.push(['Version', String(e.version)]);
  if (e.updated_at) rows.push(['Updated', time(e.updated_at)]);
  return dl(rows);
}

// ---------------------------------------------------------------- operation

async function operation(ctx, id) {
  const { signal } = ctx;
  let first = true;
  while (!signal.aborted) {
    const op = await api('GET', `/operations/${encodeURIComponent(id)}`, { signal });
    const steps = await optional(api('GET', `/operations/${id}/steps`, { signal }));
    const live = op.status === 'RUNNING';
    fill(ctx.main, ...operationBody(ctx, op, steps, live));
    if (first) { ctx.done(); first = false; }
    if (!live) return;
    await sleep(1500, signal);
  }
}

function operationBody(ctx, op, steps, live) {
  const out = [h('h1', { tabindex: '-1' }, 'Operation ', h('code', {}, op.operation_id))];
  out.push(h('p', { class: 'status-line' }, badge(op.status, { testid: 'op-status' }),
    live ? h('span', { class: 'live', testid: 'op-live', role: 'status' }, 'Following live…') : null));
  if (op.needs_attention) {
    out.push(h('div', { class: 'banner alert', testid: 'op-needs-attention', role: 'status' },
      h('p', {}, 'This operation needs attention: it failed, and its compensation could not undo everything.'),
      ctx.admin ? h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', testid: 'action-retry', on: { click: () => openAction(ctx, 'retry', null, { op }) } }, 'Retry compensation'),
        h('button', { type: 'button', testid: 'action-resolve', on: { click: () => openAction(ctx, 'resolve', null, { op }) } }, 'Resolve by hand')) : null));
  }
  const ci = op.compensation_incomplete || [];
  out.push(dl([
    ['Kind', op.kind, 'op-type'],
    ['Tenant', tenantLink(ctx, op.tenant_id, { testid: 'op-tenant' })],
    op.from_plan || op.to_plan ? ['Plans', `${op.from_plan || '?'} → ${op.to_plan || '?'}${op.at_period_end ? ' at the end of the period' : ''}`] : null,
    op.effective_at ? ['Effective at', time(op.effective_at)] : null,
    op.requested_by ? ['Requested by', op.requested_by] : null,
    op.reason ? ['Reason', op.reason] : null,
    op.retention_days ? ['Retention', `${op.retention_days} days`] : null,
    ['Started', time(op.created_at)],
    ['Last change', [time(op.updated_at), TERMINAL.has(op.status) ? ` (took ${duration(new Date(op.updated_at) - new Date(op.created_at))})` : ` (${ago(op.created_at)} so far)`]],
    op.attempt ? ['Operator retries', String(op.attempt)] : null,
    op.error || op.message ? ['Error', [op.error ? h('code', {}, op.error) : null, op.cause ? h('pre', { class: 'cause' }, op.cause) : op.message ? ` ${op.message}` : null], 'op-error'] : null,
    ci.length ? ['Not undone', h('ul', { testid: 'op-compensation-incomplete' }, ci.map((c) => h('li', {}, c)))] : null,
    op.marks && op.marks.length ? ['Marks', h('ul', {}, op.marks.map((m) => h('li', { testid: 'op-mark' }, m)))] : null,
    op.resolution ? ['Resolution', op.resolution] : null,
  ]));
  out.push(section('Steps', steps.error ? problemNote(steps.error) : stepsTable(steps.data)));
  return out;
}

// causeText reads a step's cause as a person would: a Lambda error arrives as the
// JSON {"errorMessage", "errorType", ...}, of which the message is what to show.
function causeText(cause) {
  try {
    const v = JSON.parse(cause);
    if (v && typeof v.errorMessage === 'string') return v.errorMessage;
  } catch { /* not JSON: shown as it is */ }
  return cause;
}

function stepsTable(st) {
  const rows = (st.steps || []).map((s) => h('tr', { testid: 'step-row', dataset: { stepName: s.name, status: s.status }, class: /fail|timed|abort/i.test(s.status) ? 'failed' : '' },
    h('td', {}, s.name), h('td', { testid: 'step-status' }, s.status), h('td', { testid: 'step-started' }, time(s.started_at)),
    h('td', { testid: 'step-duration' }, s.duration_ms === null || s.duration_ms === undefined ? (s.ended_at ? '—' : 'running') : duration(s.duration_ms)),
    // Only Task states are attempted (and retried); a Choice or Pass has no attempts.
    h('td', { testid: 'step-attempts' }, s.type && s.type !== 'Task' ? '—' : String(s.attempts ?? 1),
      s.attempts > 1 ? ` (${s.attempts - 1} retr${s.attempts === 2 ? 'y' : 'ies'})` : ''),
    h('td', { testid: 'step-error' }, s.error ? [h('code', {}, s.error), s.cause ? h('pre', { class: 'cause' }, causeText(s.cause)) : null] : '—')));
  return [
    st.execution_status ? h('p', { class: 'hint' }, `Step Functions execution: ${st.execution_status}.`) : null,
    table('Steps', ['Step', 'Status', 'Started', 'Duration', 'Attempts', 'Error'], rows, 'No step has run yet.'),
  ];
}

// ---------------------------------------------------------------- exports

async function exportsView(ctx, id) {
  const { signal } = ctx;
  let first = true;
  const head = [h('h1', { tabindex: '-1' }, 'Exports of ', tenantLink(ctx, id)),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', testid: 'action-export', on: { click: () => openAction(ctx, 'export', { id }) } }, 'Request export'))];
  while (!signal.aborted) {
    const res = await api('GET', `/tenants/${encodeURIComponent(id)}/exports`, { signal });
    const list = res.exports || [];
    const live = list.some((x) => x.status === 'queued' || x.status === 'running');
    // The list carries no download link; each completed export's own GET signs a
    // fresh one (a few, newest first, so a long history costs no flood of requests).
    await Promise.all(list.filter((x) => x.status === 'completed' && !x.download_url).slice(0, 5).map(async (x) => {
      const one = await api('GET', `/tenants/${encodeURIComponent(id)}/exports/${encodeURIComponent(x.export_id)}`, { signal }).catch(() => null);
      if (one) Object.assign(x, { download_url: one.download_url, url_expires_at: one.url_expires_at });
    }));
    fill(ctx.main, ...head, live ? h('p', { class: 'live', testid: 'exports-live', role: 'status' }, 'Following live…') : null,
      table('Exports', ['Requested', 'Status', 'Progress', 'Size', 'SHA-256', 'Download'], list.map((x) => exportRow(x)), 'No export yet.'));
    if (first) { ctx.done(); first = false; }
    if (!live) return;
    await sleep(1500, signal);
  }
}

function exportRow(x) {
  const p = x.progress || {};
  const pct = x.status === 'completed' ? 100 : Math.max(0, Math.min(100, p.percent ?? 0));
  return h('tr', { testid: 'export-row', dataset: { exportId: x.export_id, status: x.status } },
    h('td', {}, time(x.created_at)),
    h('td', { testid: 'export-status' }, x.status, x.error ? [' ', h('code', {}, x.error)] : null, x.cause ? h('pre', { class: 'cause' }, x.cause) : null),
    h('td', {}, h('progress', { testid: 'export-progress', max: 100, value: pct, 'aria-label': `Export progress ${pct}%` }),
      x.status === 'completed' ? ` ${num(p.items ?? 0)} items`
        : ` ${num(p.items ?? 0)} of ${p.estimate_complete ? '' : '≥ '}${num(p.estimated_items ?? 0)} items`),
    h('td', { testid: 'export-size' }, x.size_bytes ? bytes(x.size_bytes) : '—'),
    h('td', {}, x.sha256 ? h('code', { testid: 'export-sha256', class: 'hash' }, x.sha256) : '—'),
    h('td', {}, x.download_url ? [h('a', { href: x.download_url, testid: 'export-download', download: `${x.export_id}.jsonl.gz`, rel: 'noreferrer' }, 'Download'),
      x.url_expires_at ? h('div', { class: 'hint' }, 'link valid until ', time(x.url_expires_at)) : null] : '—'));
}

// ---------------------------------------------------------------- certificate

// keptUntil words a retained item's until: an RFC 3339 time as a local date,
// anything else (the certificate says it in words when no date is known) as a sentence.
function keptUntil(u) {
  if (!u) return null;
  if (/^\d{4}-\d\d-\d\dT/.test(u) && !Number.isNaN(new Date(u).getTime())) return [' Kept until ', time(u), '.'];
  return ` ${u.charAt(0).toUpperCase()}${u.slice(1)}.`;
}

async function certificate(ctx, id) {
  const { data: c, text } = await api('GET', `/tenants/${encodeURIComponent(id)}/deletion-certificate`, { signal: ctx.signal, raw: true });
  const verified = await verify(c).catch(() => false);
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = h('a', { href: url, download: `deletion-certificate-${id}.json`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  ctx.main.append(
    h('h1', { tabindex: '-1' }, 'Deletion certificate of ', h('span', { testid: 'cert-tenant' }, c.tenant_id)),
    dl([
      ['Purge operation', c.operation_id ? opLink(ctx, c.operation_id) : '—'],
      ['Generated', time(c.generated_at), 'cert-issued-at'],
      ['Inventory taken', time(c.inventory_taken_at)],
      ['Backups expire', time(c.backups_expire_at)],
      ['SHA-256', [h('code', { testid: 'cert-sha256', class: 'hash' }, c.sha256 || '—'), ' ',
        h('span', { testid: 'cert-verified', class: verified ? 'ok' : 'hint' }, verified ? '(checked in this browser: it matches the content)' : '(not checked here; docs/api.md shows how to check a copy)')]],
    ]),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', testid: 'cert-download', on: { click: download } }, 'Download signed JSON')),
    section('Erased, source by source', table('Sources', ['Source', 'Items deleted', 'Verified empty at', 'Note'],
      Object.entries(c.sources || {}).map(([k, s]) => h('tr', { testid: 'cert-source', dataset: { source: k } },
        h('td', {}, k), h('td', {}, num(s.items_deleted)), h('td', {}, time(s.verified_empty_at)), h('td', {}, s.note || '—'))))),
    section('What remains, and why', h('ul', {}, (c.remains || []).map((r) => h('li', { testid: 'cert-retained' },
      h('strong', {}, r.what), ` — ${r.why}.`, keptUntil(r.until))))));
}

/** verify recomputes the certificate's SHA-256 over its canonical JSON (keys sorted, no whitespace). */
async function verify(c) {
  const { sha256, ...rest } = c;
  const canon = (v) => Array.isArray(v) ? `[${v.map(canon).join(',')}]`
    : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`
      : JSON.stringify(v);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canon(rest)));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return hex === sha256;
}

function notfound(ctx) {
  title(ctx, 'Not found');
  ctx.main.append(h('p', {}, 'The console has no page here. ', link(ctx, '/', 'Go to the start.')));
}

export const views = { overview, tenants, tenant, operation, exports: exportsView, certificate, notfound };
