// The overview: jobs by state, finished attempts per minute over the last hour,
// servers, and the latest failures — what to look at first when something broke.

function overviewPage(main) {
  const counts = el('div', { class: 'counts', id: 'counts' });
  const chart = el('div', { class: 'card-body' }, el('div', { class: 'empty' }, 'Loading…'));
  const legend = el('div', { class: 'legend' });
  const servers = el('ul', { class: 'servers-list' });
  const failures = el('tbody');
  let points = null;

  fill(main,
    pageHead('Overview', 'Every job in the store, as it happens.'),
    counts,
    el('div', { class: 'grid-2' },
      el('section', { class: 'card', id: 'throughput' },
        el('div', { class: 'card-head' }, el('h2', {}, 'Throughput, last hour'), legend),
        chart),
      el('section', { class: 'card', id: 'servers' },
        el('div', { class: 'card-head' }, el('h2', {}, 'Servers'), link('/servers', { class: 'note' }, 'All servers')),
        servers)),
    el('section', { class: 'card', id: 'failures' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Latest failures'),
        link('/jobs?state=Failed', { class: 'note' }, 'All failed jobs')),
      el('div', { class: 'table-wrap' }, el('table', { class: 'responsive' }, jobsTableHead(), failures))));

  if (latestStats) drawCounts(counts, latestStats);
  const redraw = () => points && drawThroughput(chart, legend, points);
  window.addEventListener('resize', redraw);

  return {
    title: 'Overview',
    topics: ['throughput', 'servers', 'jobs'],
    params: { state: 'Failed', limit: 5 },
    on: {
      stats: (stats) => drawCounts(counts, stats),
      throughput(data) {
        points = data;
        redraw();
      },
      servers: (data) => drawServerList(servers, data.items),
      jobs: (page) => drawJobRows(failures, page.items, 'No failed jobs. All good.'),
    },
    close: () => window.removeEventListener('resize', redraw),
  };
}

function drawCounts(node, stats) {
  fill(node, STATES.map((state) => {
    const n = stats.counts[state] || 0;
    return link('/jobs' + query({ state }), {
      class: `count-card ${stateClass(state)}${n ? '' : ' zero'}`,
      'data-state': state,
    }, el('div', { class: 'n' }, number(n)), el('div', { class: 'label' }, state));
  }));
}

/** Stacked bars, succeeded under failed, one per minute; native tooltips per bar. */
function drawThroughput(node, legend, points) {
  const width = Math.max(node.clientWidth - 4, 280);
  const height = 220;
  const pad = { top: 10, right: 8, bottom: 24, left: 34 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const most = Math.max(...points.map((p) => p.succeeded + p.failed), 0);
  const step = niceStep(most);
  const top = Math.max(step * 4, 4);
  const y = (value) => pad.top + plotH - (value / top) * plotH;
  const slot = plotW / points.length;
  const barW = Math.max(1, slot * 0.72);

  const grid = svg('g', { class: 'grid' });
  const axis = svg('g', { class: 'axis' });
  for (let tick = 0; tick <= top; tick += top / 4) {
    grid.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick) }));
    axis.append(svg('text', { x: pad.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, number(tick)));
  }
  const bars = svg('g', {});
  points.forEach((point, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    const minute = new Date(point.minute);
    const label = `${hhmm(minute)} — ${plural(point.succeeded, 'succeeded', 'succeeded')}, ` +
      `${plural(point.failed, 'failed', 'failed')}`;
    const group = svg('g', { class: 'bar' }, svg('title', {}, label));
    group.append(svg('rect', { x, y: pad.top, width: barW, height: plotH, fill: 'transparent' }));
    if (point.succeeded) {
      group.append(svg('rect', {
        class: 'bar-succeeded', x, width: barW, rx: 1.5,
        y: y(point.succeeded), height: plotH - (y(point.succeeded) - pad.top),
      }));
    }
    if (point.failed) {
      const base = y(point.succeeded);
      group.append(svg('rect', {
        class: 'bar-failed', x, width: barW, rx: 1.5,
        y: y(point.succeeded + point.failed), height: base - y(point.succeeded + point.failed),
      }));
    }
    bars.append(group);
    if (i % 15 === 0 || i === points.length - 1) {
      axis.append(svg('text', {
        x: x + barW / 2, y: height - 6,
        'text-anchor': i === points.length - 1 ? 'end' : (i === 0 ? 'start' : 'middle'),
      }, i === points.length - 1 ? 'now' : hhmm(minute)));
    }
  });
  fill(node, svg('svg', {
    class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': 'Finished attempts per minute over the last hour',
  }, grid, bars, axis));
  const sum = (key) => points.reduce((total, point) => total + point[key], 0);
  fill(legend,
    el('span', { class: 's-succeeded' }, 'Succeeded ', el('b', {}, number(sum('succeeded')))),
    el('span', { class: 's-failed' }, 'Failed ', el('b', {}, number(sum('failed')))));
}

/** A round step for four grid lines above `most`. */
function niceStep(most) {
  const raw = Math.max(most, 1) / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw);
  return Math.max(1, step);
}

function hhmm(date) {
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

function drawServerList(node, servers) {
  if (!servers.length) {
    fill(node, el('li', { class: 'empty' }, 'No server is running jobs on this store.'));
    return;
  }
  fill(node, servers.map((server) => el('li', {},
    el('div', {},
      el('div', { class: 'title' }, el('span', { class: `dot${stale(server) ? ' stale' : ''}` }), server.name),
      el('div', { class: 'note' }, `${server.host} · pid ${server.pid} · seen `, timeAgo(server.heartbeat_at))),
    el('div', { class: 'num' },
      el('div', { class: 'note' }, `${number(server.running)} / ${number(server.workers)} busy`),
      meter(server.running, server.workers)))));
}

/** Quiet for longer than a few default poll intervals: maybe gone. */
function stale(server) {
  return Date.now() - Date.parse(server.heartbeat_at) > 30000;
}

function meter(value, max) {
  const bar = el('div', {});
  bar.style.width = `${max ? Math.min(100, (100 * value) / max) : 0}%`;
  return el('div', { class: 'meter', title: `${value} of ${max}` }, bar);
}
