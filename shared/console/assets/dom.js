// Small DOM and formatting helpers. Everything the console shows is built with
// h(), which only ever sets text (never HTML), so no API value can inject markup.

/**
 * h builds an element. attrs: testid → data-testid, on → event listeners, class,
 * and booleans/strings set as properties (value, checked, disabled, hidden) or
 * attributes. Children may be strings, numbers, nodes, arrays, null or false.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'testid') el.dataset.testid = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/**
 * fill replaces el's children as h() adds them: null, undefined and false are
 * skipped (replaceChildren itself would show them as the text "null").
 */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** time renders an ISO time as local date and time (UTC in the tooltip). */
export function time(iso) {
  if (!iso) return h('span', {}, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(iso));
  return h('time', { datetime: iso, title: d.toISOString() }, d.toLocaleString());
}

/** ago says how long ago iso was, e.g. "3 h 12 min". */
export function ago(iso, now = Date.now()) {
  const ms = now - new Date(iso).getTime();
  return Number.isFinite(ms) ? duration(Math.max(0, ms)) : '—';
}

/** duration renders milliseconds for a human: "850 ms", "12.3 s", "4 min 2 s", "3 h 5 min", "2 d 4 h". */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/** bytes renders a size: "512 B", "1.5 KiB", "3.2 MiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** num renders a number with grouping; null is "unlimited" when said so. */
export function num(n, nullText = '—') {
  if (n === null || n === undefined) return nullText;
  return Number(n).toLocaleString();
}

/** sleep waits ms or until signal aborts (then it resolves early). */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/** section is a titled region with an accessible name. */
export function section(title, ...children) {
  const id = 'sec-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** table builds a table with a caption-less header row and the given rows. */
export function table(label, headers, rows, empty = 'Nothing here.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'scroll' },
    h('table', { 'aria-label': label },
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows)));
}
