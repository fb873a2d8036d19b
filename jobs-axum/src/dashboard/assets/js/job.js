// One job: what it is, where it is, its arguments, every attempt with its error and
// source chain, and its history. Requeue and delete act on it; the page follows the
// job live, so a requeued job is seen running and succeeding without a reload.
// Progress and logs render when the job has them.

function jobPage(main, _search, id) {
  const head = el('div', {});
  const body = el('div', { class: 'stack' }, el('div', { class: 'card empty' }, 'Loading…'));
  fill(main, head, body);
  let job = null;

  const requeue = el('button', {
    class: 'primary', id: 'requeue',
    onclick: () => act(requeue, async () => {
      draw(await api('POST', '/api' + jobPath(id) + '/requeue'));
      toast('Requeued: it runs as soon as a worker is free.');
    }),
  }, 'Requeue');
  const remove = el('button', {
    class: 'danger', id: 'delete',
    onclick() {
      if (!window.confirm('Delete this job? It will not run again; a running attempt\'s result is discarded.')) return;
      act(remove, async () => {
        await api('DELETE', '/api' + jobPath(id));
        toast('Deleted.');
      });
    },
  }, 'Delete');

  function draw(next) {
    job = next;
    const finished = ['Succeeded', 'Failed', 'Deleted', 'Scheduled', 'Enqueued'].includes(job.state);
    requeue.dataset.disabled = String(!finished || job.state === 'Enqueued');
    requeue.disabled = requeue.dataset.disabled === 'true';
    requeue.title = requeue.disabled ? `A job that is ${job.state} cannot be requeued` : 'Run it again now';
    remove.dataset.disabled = String(job.state === 'Deleted');
    remove.disabled = remove.dataset.disabled === 'true';
    fill(head, pageHead(job.display_name || job.name,
      [el('span', { class: 'mono' }, job.name), ' · ', el('span', { class: 'mono' }, job.id),
        labels(job.labels)],
      [requeue, remove],
      [link('/jobs', {}, 'Jobs'), ' / ', link('/jobs' + query({ state: job.state }), {}, job.state)]));
    const latest = job.attempts.length ? job.attempts[job.attempts.length - 1] : null;
    fill(body,
      summary(job),
      job.progress ? progress(job.progress) : null,
      latest && latest.error && ['Failed', 'Scheduled'].includes(job.state)
        ? card(job.state === 'Failed' ? 'Failed with' : 'Last attempt failed with',
          job.state === 'Scheduled' ? ['retrying ', timeAgo(job.run_at)] : null,
          el('div', { class: 'card-body', id: 'last-error' }, errorBox(latest.error)))
        : null,
      job.result !== null && job.result !== undefined
        ? card('Result', null, el('div', { class: 'card-body' },
          el('pre', { class: 'json', id: 'result' }, JSON.stringify(job.result, null, 2))))
        : null,
      card('Arguments', null, el('div', { class: 'card-body' },
        el('pre', { class: 'json', id: 'arguments' }, JSON.stringify(job.payload, null, 2)))),
      job.logs && job.logs.length ? logs(job.logs) : null,
      attempts(job.attempts),
      historyCard(job.history));
  }

  return {
    title: 'Job',
    topics: ['job'],
    params: { id },
    on: {
      job(next) {
        draw(next);
        document.title = `${next.display_name || next.name} · jobs`;
      },
      failure() {
        if (!job) fill(body, el('div', { class: 'card empty' }, 'This job cannot be read.'));
      },
    },
  };
}

function summary(job) {
  const tries = job.max_retries === null ? 'server default' : number(job.max_retries + 1);
  const facts = [
    ['State', badge(job.state, true)],
    ['Attempt', `${number(job.attempt)} of ${tries}`],
    [job.state === 'Scheduled' || job.state === 'Enqueued' ? 'Runs' : 'Run at', timeAgo(job.run_at)],
    ['Created', timeAgo(job.created_at)],
    ['Updated', timeAgo(job.updated_at)],
    ['Queue', job.queue],
    ['Priority', number(job.priority)],
    job.owner ? ['Running on', el('span', { class: 'mono' }, job.owner)] : null,
    job.batch_id ? ['Batch', link('/batches/' + encodeURIComponent(job.batch_id), { id: 'batch', class: 'mono' }, job.batch_id)] : null,
    job.waiting_for_event ? ['Waits for', el('span', { id: 'awaited' },
      el('span', { class: 'mono' }, `${job.waiting_for_event.name} · ${job.waiting_for_event.key}`),
      ', until ', timeAgo(job.waiting_for_event.until))] : null,
  ].filter(Boolean);
  const unserved = job.waiting_for_server
    ? el('div', { class: 'error-box', id: 'unserved' }, el('div', { class: 'message' },
      `No server registers \`${job.name}\`: it waits for a server that does (see Servers).`))
    : null;
  return el('section', { class: 'card' }, el('div', { class: 'card-body' }, unserved,
    el('dl', { class: 'facts', id: 'summary' },
      facts.map(([term, value]) => el('div', {}, el('dt', {}, term), el('dd', {}, value))))));
}

/** `{done, total}`: a bar and the numbers. */
function progress(value) {
  const total = Math.max(0, Number(value.total) || 0);
  const done = Math.min(total, Math.max(0, Number(value.done) || 0));
  const share = total ? (100 * done) / total : 0;
  const bar = el('div', {});
  bar.style.width = `${share}%`;
  return card('Progress', null, el('div', { class: 'card-body', id: 'progress' },
    el('div', {
      class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done,
    }, bar),
    el('div', { class: 'progress-label' }, el('span', {}, `${number(done)} of ${number(total)}`),
      el('span', {}, `${Math.round(share)}%`))));
}

/** `[{at, attempt, level, message}]`, oldest first: one line each, level coloured. */
function logs(lines) {
  return card('Logs', plural(lines.length, 'line'), el('div', { class: 'card-body' },
    el('ol', { class: 'logs', id: 'logs' }, lines.map((line) => el('li', { class: `level-${line.level}` },
      el('time', { datetime: line.at, title: absolute(line.at) }, clock(line.at)),
      el('span', { class: 'level' }, String(line.level || '').toUpperCase()),
      line.attempt ? el('span', { class: 'attempt-no', title: `attempt ${line.attempt}` }, `#${line.attempt}`) : null,
      el('span', { class: 'text' }, line.message))))));
}

function clock(iso) {
  return absolute(iso).slice(11);
}

const OUTCOMES = {
  running: ['Processing', 'running'],
  succeeded: ['Succeeded', 'succeeded'],
  retried: ['Scheduled', 'failed, retried'],
  failed: ['Failed', 'failed'],
  released: ['Enqueued', 'put back at shutdown'],
  deleted: ['Deleted', 'deleted while running'],
};

function attempts(list) {
  const items = list.slice().reverse().map((attempt) => {
    const [state, label] = OUTCOMES[attempt.outcome] || ['Deleted', attempt.outcome];
    const took = attempt.finished_at
      ? duration(Date.parse(attempt.finished_at) - Date.parse(attempt.started_at))
      : null;
    return el('li', { class: 'attempt', 'data-outcome': attempt.outcome },
      el('div', { class: 'attempt-head' },
        el('span', { class: 'n' }, `Attempt ${attempt.attempt}`),
        el('span', { class: `badge ${stateClass(state)}` }, label),
        el('span', { class: 'meta' }, 'started ', timeAgo(attempt.started_at),
          took ? ` · took ${took}` : null, attempt.server ? ` · on ${attempt.server}` : null)),
      attempt.error ? errorBox(attempt.error) : null);
  });
  return card('Attempts', list.length ? 'newest first' : null,
    items.length
      ? el('ol', { class: 'attempts', id: 'attempts' }, items)
      : el('div', { class: 'empty' }, 'Not run yet.'));
}

function historyCard(entries) {
  return card('History', 'newest first', el('ol', { class: 'timeline', id: 'history' },
    entries.slice().reverse().map((entry) => el('li', { class: stateClass(entry.state) },
      el('strong', {}, entry.state),
      entry.attempt ? ` · attempt ${entry.attempt}` : null,
      entry.server ? ` · ${entry.server}` : null,
      el('span', { class: 'when' }, timeAgo(entry.at)),
      entry.error ? el('div', { class: 'sub' }, entry.error.message) : null))));
}
