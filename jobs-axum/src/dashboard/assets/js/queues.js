// The queues: each one's waiting, scheduled, running and failed jobs, the limits and
// rates the servers hold it to, how many wait for its rate, and whether it is paused,
// with a button to pause or resume it.

function queuesPage(main) {
  const rows = el('tbody', {}, emptyRow(8, 'Loading…'));
  const names = el('div', {});
  fill(main,
    pageHead('Queues', 'Every queue with unfinished jobs, paused, or named by a server\'s settings. A paused queue starts no job on any server until it is resumed; jobs already running go on.'),
    el('div', { class: 'stack' },
      el('section', { class: 'card' }, el('div', { class: 'table-wrap' },
        el('table', { class: 'responsive', id: 'queues' },
          el('thead', {}, el('tr', {},
            el('th', {}, 'Queue'), el('th', { class: 'num' }, 'Waiting'), el('th', { class: 'num' }, 'Scheduled'),
            el('th', { class: 'num' }, 'Running'), el('th', { class: 'num' }, 'Failed'), el('th', {}, 'Limits'),
            el('th', {}, 'Status'), el('th', {}, ''))),
          rows))),
      names));
  const draw = (data) => {
    if (!data.items.length) {
      fill(rows, emptyRow(8, 'No queue has unfinished jobs, and no server names one.'));
    } else {
      fill(rows, data.items.map((queue) => el('tr', { 'data-queue': queue.queue },
        el('td', {}, el('div', { class: 'title mono' }, queue.queue)),
        el('td', { class: 'num', 'data-label': 'Waiting' }, number(queue.waiting),
          queue.rate_limited
            ? el('div', { class: 'sub rate-limited' }, `${number(queue.rate_limited)} rate-limited`)
            : null),
        el('td', { class: 'num', 'data-label': 'Scheduled' }, number(queue.scheduled)),
        el('td', { class: 'num', 'data-label': 'Running' }, number(queue.running)),
        el('td', { class: 'num', 'data-label': 'Failed' }, number(queue.failed)),
        el('td', { 'data-label': 'Limits' }, queueLimits(queue.limits)),
        el('td', { 'data-label': 'Status' }, pauseStatus(queue)),
        el('td', {}, el('div', { class: 'actions' },
          pauseButton('queue', queue.queue, queue.paused, '/api/queues/', refresh))))));
    }
    if (!data.paused_job_names.length) {
      fill(names);
      return;
    }
    const list = el('tbody', {}, data.paused_job_names.map((paused) => el('tr', { 'data-name': paused.name },
      el('td', {}, el('div', { class: 'title mono' }, paused.name)),
      el('td', { 'data-label': 'Status' }, pauseStatus(paused)),
      el('td', {}, el('div', { class: 'actions' },
        pauseButton('job name', paused.name, true, '/api/job-names/', refresh))))));
    fill(names, card('Paused job names', 'no job of these names starts, whatever its queue',
      el('div', { class: 'table-wrap' }, el('table', { class: 'responsive', id: 'paused-job-names' }, list))));
  };
  // After an action the page draws what the API says at once; live updates follow.
  const refresh = async () => draw(await api('GET', '/api/queues'));
  return {
    title: 'Queues',
    topics: ['queues'],
    on: { queues: draw },
  };
}

/**
 * The limits and rates each server declares: those across the cluster once if the
 * servers agree, the local ones per server.
 */
function queueLimits(limits) {
  if (!limits || !limits.length) return el('span', { class: 'muted' }, '—');
  const agreed = (key, text) => {
    const values = [...new Set(limits.filter((limit) => limit[key] != null).map((limit) => limit[key]))];
    return values.length
      ? el('div', { class: `limit-${key}` }, text(values),
        values.length > 1 ? el('span', { class: 'sub' }, ' (the servers disagree)') : null)
      : null;
  };
  return el('div', { class: 'limits' },
    agreed('global', (values) => `${values.map(number).join(' / ')} at once across the cluster`),
    agreed('rate', (values) => `${values.join(' / ')} starts across the cluster`),
    limits.filter((limit) => limit.local !== null).map((limit) =>
      el('div', { class: 'sub' }, `${number(limit.local)} at once on `, el('span', { class: 'mono' }, limit.server))));
}

/** Running, or paused with who paused it and when. */
function pauseStatus(item) {
  if (!item.paused) return el('span', { class: 'pill on' }, 'Running');
  return el('span', {}, el('span', { class: 'pill paused', 'data-paused': true }, 'Paused'),
    el('div', { class: 'sub' }, 'by ', el('span', { class: 'paused-by' }, item.paused_by), ' · ', timeAgo(item.paused_at)));
}

/** Pause (after a confirmation) or resume a queue or a job name. */
function pauseButton(kind, name, paused, prefix, done) {
  const path = prefix + encodeURIComponent(name);
  const button = el('button', {
    class: `small${paused ? '' : ' danger'}`, 'data-action': paused ? 'resume' : 'pause',
    onclick() {
      if (!paused && !window.confirm(`Pause the ${kind} ${name} on every server? Its jobs wait until it is resumed; jobs already running go on.`)) return;
      act(button, async () => {
        await api('POST', `${path}/${paused ? 'resume' : 'pause'}`);
        toast(`${name} ${paused ? 'resumed' : 'paused'}.`);
        await done();
      });
    },
  }, paused ? 'Resume' : 'Pause');
  return button;
}
