// The servers registered in the store: how busy each is and when it last heartbeated.

function serversPage(main) {
  const rows = el('tbody', {}, emptyRow(8, 'Loading…'));
  const unserved = el('div', { id: 'unserved', class: 'page-banner', hidden: true });
  fill(main,
    pageHead('Servers', 'Every process running jobs on this store, as it last heartbeated, the job names it runs, and the queues it claims from with their limits.'),
    unserved,
    el('section', { class: 'card' }, el('div', { class: 'table-wrap' },
      el('table', { class: 'responsive', id: 'servers' },
        el('thead', {}, el('tr', {},
          el('th', {}, 'Server'), el('th', {}, 'Host'), el('th', {}, 'Busy'),
          el('th', { class: 'num' }, 'Workers'), el('th', {}, 'Jobs'), el('th', {}, 'Queues'), el('th', {}, 'Started'), el('th', {}, 'Last heartbeat'))),
        rows))));
  return {
    title: 'Servers',
    topics: ['servers'],
    on: {
      servers(data) {
        showUnserved(unserved, data.unserved || []);
        if (!data.items.length) {
          fill(rows, emptyRow(8, 'No server is running jobs on this store.'));
          return;
        }
        fill(rows, data.items.map((server) => el('tr', {},
          el('td', {},
            el('div', { class: 'title' }, el('span', { class: `dot${stale(server) ? ' stale' : ''}` }), server.name),
            el('div', { class: 'sub mono' }, server.id)),
          el('td', { 'data-label': 'Host' }, `${server.host} · pid ${server.pid}`),
          el('td', { 'data-label': 'Busy' }, `${number(server.running)} running`, meter(server.running, server.workers)),
          el('td', { class: 'num', 'data-label': 'Workers' }, number(server.workers)),
          el('td', { 'data-label': 'Jobs' }, server.jobs
            ? el('details', {}, el('summary', {}, plural(server.jobs.length, 'job')),
              el('div', { class: 'sub mono' }, server.jobs.join(', ')))
            : el('span', { class: 'sub' }, 'not stored (older release)')),
          el('td', { 'data-label': 'Queues' }, serverQueues(server.queues)),
          el('td', { class: 'time', 'data-label': 'Started' }, timeAgo(server.started_at)),
          el('td', { class: 'time', 'data-label': 'Heartbeat' }, timeAgo(server.heartbeat_at)))));
      },
    },
  };
}

/** The banner of job names no server runs: jobs waiting for a build that is not deployed. */
function showUnserved(banner, names) {
  fill(banner, names.length ? el('div', { class: 'error-box' },
    names.map((unserved) => el('div', { class: 'message' },
      `No server registers \`${unserved.name}\`: `,
      link(`/jobs?name=${encodeURIComponent(unserved.name)}`, {}, plural(unserved.waiting, 'job')),
      ' waiting, due since ', timeAgo(unserved.oldest_due),
      '. They run when a server that registers the name starts, or fail after fail_unserved_after.'))) : null);
  banner.hidden = names.length === 0;
}

/** The queues a server claims from, and the limits and rates it holds them to. */
function serverQueues(queues) {
  if (!queues) return el('span', { class: 'sub' }, 'not stored (older release)');
  const rates = queues.rates || {};
  const limited = [...new Set([
    ...Object.keys(queues.limits), ...Object.keys(queues.global_limits), ...Object.keys(rates),
  ])].sort();
  return el('div', { class: 'server-queues' },
    el('div', {}, queues.served ? queues.served.join(', ') : 'every queue'),
    limited.map((queue) => el('div', { class: 'sub' }, el('span', { class: 'mono' }, queue), ': ',
      [
        queue in queues.limits ? `${number(queues.limits[queue])} at once here` : null,
        queue in queues.global_limits ? `${number(queues.global_limits[queue])} across the cluster` : null,
        queue in rates ? `${rates[queue]} starts across the cluster` : null,
      ].filter(Boolean).join(', '))));
}
