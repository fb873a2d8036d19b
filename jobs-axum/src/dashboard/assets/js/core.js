// The helpers every page shares. Every piece of data reaches the page through
// `textContent` or an attribute, never as HTML: a job argument such as
// `<script>alert(1)</script>` shows as those characters. (The Content-Security-Policy
// also makes the browser refuse any string assigned as HTML.)
'use strict';

const BASE = document.querySelector('meta[name="jobs-base"]').content;
const STATES = ['Awaiting', 'Scheduled', 'Enqueued', 'Processing', 'Succeeded', 'Failed', 'Deleted'];
const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element with properties and children; strings become text nodes. */
function el(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** The same for SVG elements. */
function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function build(node, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces the children of `node`. */
function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A link inside the dashboard, followed without reloading the page. */
function link(path, props, ...children) {
  return el('a', { ...props, href: BASE + path, 'data-nav': true }, ...children);
}

function jobPath(id) {
  return '/jobs/' + encodeURIComponent(id);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? '?' + text : '';
}

/** Calls the JSON API; throws an Error with the API's message on failure. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  // Mutations carry the header the server asks for against cross-site requests.
  if (method !== 'GET') headers['X-Jobs-Csrf'] = '1';
  const options = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, options);
  } catch (error) {
    throw new Error(`the dashboard could not be reached: ${error.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    // A server error of a read is the job store failing: the banner says so.
    if (response.status >= 500 && typeof problems !== 'undefined') {
      problems.database = message;
      showProblems();
    }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function stateClass(state) {
  return 's-' + String(state).toLowerCase();
}

function badge(state, big) {
  return el('span', { class: `badge ${stateClass(state)}${big ? ' big' : ''}`, 'data-state': state }, state);
}

/** The label on every job an agent's tool call created. */
const TOOL_CALL_LABEL = 'tool-call';

/** A job's labels as small pills, each a link to the jobs that carry it, or nothing. */
function labels(list) {
  if (!list || !list.length) return null;
  return el('span', { class: 'labels' },
    list.map((label) => link('/jobs' + query({ label }), { class: 'pill label' }, label)));
}

function number(n) {
  return Number(n || 0).toLocaleString('en-US');
}

function plural(n, one, many) {
  return `${number(n)} ${n === 1 ? one : many || one + 's'}`;
}

/** "12s ago", "in 3m": short, for tables. */
function relative(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  let text;
  if (abs < 5) return 'just now';
  if (abs < 60) text = `${abs}s`;
  else if (abs < 3600) text = `${Math.floor(abs / 60)}m`;
  else if (abs < 86400) text = `${Math.floor(abs / 3600)}h ${Math.floor((abs % 3600) / 60)}m`;
  else text = `${Math.floor(abs / 86400)}d ${Math.floor((abs % 86400) / 3600)}h`;
  return seconds < 0 ? `${text} ago` : `in ${text}`;
}

function absolute(iso) {
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** A time that keeps saying how long ago it was; the full time on hover. */
function timeAgo(iso) {
  if (!iso) return el('span', { class: 'muted' }, '—');
  return el('time', { datetime: iso, title: absolute(iso), 'data-relative': true }, relative(iso));
}

setInterval(() => {
  for (const node of document.querySelectorAll('time[data-relative]')) {
    node.textContent = relative(node.getAttribute('datetime'));
  }
}, 1000);

function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

function toast(message, kind) {
  const node = el('div', { class: `toast ${kind || ''}`, role: 'status' }, message);
  document.getElementById('toasts').append(node);
  setTimeout(() => node.remove(), kind === 'error' ? 8000 : 5000);
}

/** Runs an action from a button: disables it meanwhile, reports failure in a toast. */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    toast(error.message, 'error');
  } finally {
    if (button.isConnected) button.disabled = button.dataset.disabled === 'true';
  }
}

function card(title, note, ...body) {
  return el('section', { class: 'card' },
    el('div', { class: 'card-head' }, el('h2', {}, title), note ? el('span', { class: 'note' }, note) : null),
    body);
}

function emptyRow(columns, text) {
  return el('tr', {}, el('td', { colspan: columns, class: 'empty' }, text));
}

function errorBox(error) {
  return el('div', { class: 'error-box' },
    el('div', { class: 'message' }, error.message),
    error.sources && error.sources.length
      ? el('ol', { 'aria-label': 'Caused by' }, error.sources.map((source) => el('li', {}, source)))
      : null,
    // Folded: a backtrace is long, and read only when the message is not enough.
    error.backtrace
      ? el('details', { class: 'backtrace' }, el('summary', {}, 'Backtrace'),
        el('pre', {}, error.backtrace))
      : null);
}

function pageHead(title, sub, actions, crumbs) {
  return el('div', { class: 'page-head' },
    el('div', {}, crumbs ? el('div', { class: 'crumbs' }, crumbs) : null,
      el('h1', {}, title), sub ? el('div', { class: 'sub' }, sub) : null),
    actions ? el('div', { class: 'actions' }, actions) : null);
}
