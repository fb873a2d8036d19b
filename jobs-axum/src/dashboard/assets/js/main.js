// The router: reads the path, draws its page, and keeps it current over server-sent
// events. Links inside the dashboard change the page without a reload.

const ROUTES = [
  { pattern: /^\/$/, nav: 'overview', render: overviewPage },
  { pattern: /^\/jobs$/, nav: 'jobs', render: jobsPage },
  { pattern: /^\/jobs\/([^/]+)$/, nav: 'jobs', render: jobPage },
  { pattern: /^\/batches\/([^/]+)$/, nav: 'jobs', render: batchPage },
  { pattern: /^\/recurring-jobs$/, nav: 'recurring', render: recurringPage },
  { pattern: /^\/recurring-jobs\/([^/]+)$/, nav: 'recurring', render: recurringJobPage },
  { pattern: /^\/queues$/, nav: 'queues', render: queuesPage },
  { pattern: /^\/servers$/, nav: 'servers', render: serversPage },
];

/** The latest counts by state, kept across pages so tabs show them at once. */
let latestStats = null;
let current = null;

function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
  window.scrollTo(0, 0);
}

function render() {
  if (current && current.close) current.close();
  const main = document.getElementById('main');
  const path = location.pathname.slice(BASE.length).replace(/\/+$/, '') || '/';
  const route = ROUTES.find((candidate) => candidate.pattern.test(path));
  // Jobs an agent's tool calls created have a tab of their own.
  const nav = route && route.nav === 'jobs' && path === '/jobs'
    && new URLSearchParams(location.search).get('label') === TOOL_CALL_LABEL ? 'tool-calls' : route && route.nav;
  for (const tab of document.querySelectorAll('.tabs a')) {
    tab.classList.toggle('active', nav !== undefined && tab.dataset.page === nav);
  }
  if (!route) {
    document.title = 'Not found · jobs';
    fill(main, pageHead('Not found', 'There is no dashboard page at this address.'),
      link('/', {}, 'Back to the overview'));
    current = null;
    return;
  }
  const args = path.match(route.pattern).slice(1).map(decodeURIComponent);
  // A page may read something before it knows what to watch; a newer navigation wins.
  const rendering = {};
  current = rendering;
  Promise.resolve(route.render(main, new URLSearchParams(location.search), ...args)).then((view) => {
    if (current !== rendering) return;
    document.title = `${view.title} · jobs`;
    current = connect(view);
  }, (error) => {
    if (current !== rendering) return;
    // The page's first read failed: say why instead of leaving it blank, and try again.
    if (error.status && error.status < 500) {
      document.title = 'Error · jobs';
      fill(main, pageHead('This page cannot be shown', ''), errorBox(error));
      current = null;
      return;
    }
    document.title = 'Database unreachable · jobs';
    fill(main, pageHead('Database unreachable', 'The dashboard could not read the job store; it tries again every few seconds.'),
      errorBox(error));
    const retry = setTimeout(() => { if (current === retrying) render(); }, 3000);
    const retrying = { close() { clearTimeout(retry); } };
    current = retrying;
  });
}

/** What the banner says is wrong: the database, this process's job server. */
const problems = { database: null, server: null };

function showProblems() {
  const banner = document.getElementById('banner');
  const lines = [];
  if (problems.database) lines.push(el('div', {}, 'Database unreachable: the dashboard cannot read the job store: ', problems.database));
  if (problems.server) lines.push(el('div', {}, 'Job server unhealthy: ', problems.server));
  fill(banner, ...lines);
  banner.hidden = lines.length === 0;
}

/** Opens the event stream a page asks for and hands it each event. */
function connect(view) {
  const live = document.getElementById('live');
  const params = { topics: (view.topics || []).join(','), ...(view.params || {}) };
  const source = new EventSource(BASE + '/api/events' + query(params));
  const handlers = {
    ...view.on,
    stats(stats) {
      latestStats = stats;
      if (view.on && view.on.stats) view.on.stats(stats);
    },
    failure(data) {
      problems.database = data.error;
      showProblems();
    },
    recovered() {
      problems.database = null;
      showProblems();
    },
    health(health) {
      problems.server = health.healthy ? null
        : health.leases_renewed
          ? 'a loop of the job server in this process failed and is being restarted.'
          : 'the job server in this process cannot renew its leases: it runs no jobs until the database answers.';
      showProblems();
    },
  };
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => {
      if (event.data !== undefined) handler(JSON.parse(event.data));
    });
  }
  source.onopen = () => {
    live.textContent = 'Live';
    live.className = 'live on';
  };
  source.onerror = () => {
    live.textContent = 'Reconnecting…';
    live.className = 'live off';
  };
  return {
    close() {
      source.close();
      if (view.close) view.close();
    },
  };
}

document.addEventListener('click', (event) => {
  const anchor = event.target.closest('a[data-nav]');
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(anchor.href);
});

window.addEventListener('popstate', render);

/** Rows that open a page when clicked anywhere (the link inside stays the real link). */
document.addEventListener('click', (event) => {
  const row = event.target.closest('tr[data-href]');
  if (!row || event.target.closest('a, button, input')) return;
  if (window.getSelection().toString()) return;
  navigate(row.dataset.href);
});

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', render);
else render();
