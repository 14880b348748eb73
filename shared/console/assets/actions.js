// Actions: one dialog for every change a user can ask for. Each asks for
// confirmation, sends an Idempotency-Key (kept when the same request is sent again
// after a failure, new when the request changes), shows a refusal as sentences and
// every usage violation inline, and on success goes to the resulting operation,
// which its view follows live until it ends.

import { h } from './dom.js';
import { api, Problem, violationSentence } from './api.js';

const PLANS = ['free', 'starter', 'professional', 'enterprise'];

function planSelect(plans, selected) {
  return h('select', { id: 'a-plan', name: 'plan', testid: 'field-plan', required: true },
    plans.map((p) => h('option', { value: p, selected: p === selected }, p)));
}

/** specs describes each action: its fields, what it says, and the request it sends. */
function spec(kind, t, extra) {
  const id = t && t.id;
  const cur = t ? PLANS.indexOf(t.plan) : -1;
  switch (kind) {
    case 'upgrade': {
      const plans = PLANS.slice(cur + 1);
      const sel = planSelect(plans, plans[0]);
      return {
        title: `Upgrade ${id}`, confirm: 'Upgrade', text: `From ${t.plan}. Billing changes at once and the new limits apply when the flow ends.`,
        fields: [field('Plan', sel)], request: () => ['POST', `/tenants/${id}/upgrade`, { plan: sel.value }],
      };
    }
    case 'downgrade': {
      const plans = PLANS.slice(0, Math.max(cur, 0)).reverse();
      const sel = planSelect(plans, plans[0]);
      const now = h('input', { type: 'radio', name: 'when', id: 'a-now', value: 'now', testid: 'field-when-now', checked: true });
      const later = h('input', { type: 'radio', name: 'when', id: 'a-later', value: 'end', testid: 'field-when-period-end' });
      return {
        title: `Downgrade ${id}`, confirm: 'Downgrade', text: `From ${t.plan}. The tenant's usage must fit the smaller plan.`,
        fields: [field('Plan', sel), h('fieldset', {}, h('legend', {}, 'When'),
          h('div', { class: 'radio' }, now, h('label', { for: 'a-now' }, 'Now')),
          h('div', { class: 'radio' }, later, h('label', { for: 'a-later' }, 'At the end of the billing period')))],
        request: () => ['POST', `/tenants/${id}/downgrade`, { plan: sel.value, at_period_end: later.checked }],
      };
    }
    case 'suspend': {
      const reason = h('input', { id: 'a-reason', name: 'reason', testid: 'field-reason', required: true, maxlength: 500, autocomplete: 'off' });
      return {
        title: `Suspend ${id}`, confirm: 'Suspend', danger: true, text: 'Its users keep read and export access; no plan change until an operator reactivates it.',
        fields: [field('Reason', reason)], request: () => ['POST', `/tenants/${id}/suspend`, { reason: reason.value.trim() }],
      };
    }
    case 'reactivate': {
      const sel = planSelect(PLANS, t.plan);
      return {
        title: `Reactivate ${id}`, confirm: 'Reactivate', text: t.state === 'DELETED' ? 'Win the tenant back inside its retention.' : 'Lift the suspension.',
        fields: [field('Plan', sel)], request: () => ['POST', `/tenants/${id}/reactivate`, { plan: sel.value }],
      };
    }
    case 'delete': {
      const days = h('input', { id: 'a-days', name: 'retention_days', type: 'number', min: 30, max: 90, value: '30', required: true, testid: 'field-retention-days' });
      return {
        title: `Delete ${id}`, confirm: 'Delete', danger: true, text: 'The tenant is soft-deleted now and purged for good when the retention ends; it can be won back until then.',
        fields: [field('Retention days', days, '30 to 90 days')], request: () => ['DELETE', `/tenants/${id}`, { retention_days: Number(days.value) }],
      };
    }
    case 'export':
      return {
        title: `Export the data of ${id}`, confirm: 'Request export', text: 'One gzip file of everything held for the tenant, with a SHA-256 to check it by.',
        fields: [], request: () => ['POST', `/tenants/${id}/exports`, undefined],
      };
    case 'retry':
      return {
        title: `Retry the compensation of ${extra.op.operation_id}`, confirm: 'Retry',
        text: `It runs again the undo of: ${(extra.op.compensation_incomplete || []).join(', ') || 'what is left'}.`,
        fields: [], request: () => ['POST', `/operations/${extra.op.operation_id}/retry`, { action: 'retry' }],
      };
    case 'resolve': {
      const note = h('textarea', { id: 'a-note', name: 'note', testid: 'field-note', required: true, maxlength: 1000, rows: 3 });
      return {
        title: `Resolve ${extra.op.operation_id} by hand`, confirm: 'Resolve',
        text: 'Record what you fixed by hand; the operation stays FAILED and the tenant is free again.',
        fields: [field('What was fixed by hand', note)], request: () => ['POST', `/operations/${extra.op.operation_id}/retry`, { action: 'resolve', note: note.value.trim() }],
      };
    }
    default:
      throw new Error(`unknown action ${kind}`);
  }
}

function field(label, control, hint) {
  const hid = hint ? `${control.id}-hint` : null;
  if (hid) control.setAttribute('aria-describedby', hid);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hint ? h('div', { id: hid, class: 'hint' }, hint) : null);
}

/** openAction shows the confirmation dialog of kind for tenant t (or extra.op). */
export function openAction(ctx, kind, t, extra = {}) {
  const s = spec(kind, t, extra);
  document.querySelector('dialog[data-testid="action-dialog"]')?.remove();
  const problem = h('p', { testid: 'dialog-problem', role: 'alert', class: 'problem', hidden: true });
  const violations = h('ul', { testid: 'violations', class: 'violations', hidden: true });
  const confirm = h('button', { type: 'submit', class: s.danger ? 'danger' : 'primary', testid: 'dialog-confirm' }, s.confirm);
  const cancel = h('button', { type: 'button', testid: 'dialog-cancel', on: { click: () => dlg.close() } }, 'Cancel');
  let last = null; // {body, key}: the key is kept while the request stays the same
  const form = h('form', { method: 'dialog', on: { submit: onSubmit } },
    h('h2', { id: 'dlg-title' }, s.title), h('p', {}, s.text), ...s.fields, problem, violations,
    h('div', { class: 'actions end' }, cancel, confirm));
  const dlg = h('dialog', { testid: 'action-dialog', 'aria-labelledby': 'dlg-title', on: { close: () => dlg.remove() } }, form);
  document.body.append(dlg);
  dlg.showModal();

  async function onSubmit(e) {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const [method, path, body] = s.request();
    const sig = JSON.stringify([method, path, body]);
    if (!last || last.sig !== sig) last = { sig, key: crypto.randomUUID() };
    problem.hidden = true;
    violations.hidden = true;
    violations.replaceChildren();
    confirm.disabled = true;
    const label = confirm.textContent;
    confirm.textContent = 'Working…';
    try {
      const res = await api(method, path, { body, idempotencyKey: last.key });
      dlg.close();
      if (kind === 'export') ctx.navigate(`/tenants/${t.id}/exports`);
      else if (res && res.operation_id && kind !== 'resolve') ctx.navigate(`/operations/${res.operation_id}`);
      else ctx.render();
    } catch (err) {
      if (err.name === 'AbortError') return;
      problem.textContent = err instanceof Problem ? err.sentence() : String(err.message || err);
      problem.hidden = false;
      if (err instanceof Problem && err.violations.length) {
        violations.replaceChildren(...err.violations.map((v) => h('li', { testid: 'violation' }, violationSentence(v))));
        violations.hidden = false;
      }
      confirm.disabled = false;
      confirm.textContent = label;
    }
  }
}
