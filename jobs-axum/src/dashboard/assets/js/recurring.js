// Recurring jobs: their schedules, next and last runs, and the actions on them —
// trigger now, enable, disable, delete — in a list and on a page of their own.

function recurringPath(id) {
  return '/recurring-jobs/' + encodeURIComponent(id);
}

function recurringPage(main) {
  const rows = el('tbody', {}, emptyRow(6, 'Loading…'));
  fill(main,
    pageHead('Recurring jobs', 'Jobs that run on a schedule. Times are shown in your browser\'s time zone.'),
    el('section', { class: 'card' }, el('div', { class: 'table-wrap' },
      el('table', { class: 'responsive', id: 'recurring' },
        el('thead', {}, el('tr', {},
          el('th', {}, 'Recurring job'), el('th', {}, 'Schedule'), el('th', {}, 'Next run'),
          el('th', {}, 'Last run'), el('th', {}, 'Status'), el('th', {}, ''))),
        rows))));
  return {
    title: 'Recurring jobs',
    topics: ['recurring'],
    on: {
      recurring(data) {
        if (!data.items.length) {
          fill(rows, emptyRow(6, 'No recurring jobs. Declare one with #[recurring] or jobs.recurring().cron(…).'));
          return;
        }
        fill(rows, data.items.map((recurring) => el('tr', {
          class: 'link-row', 'data-href': BASE + recurringPath(recurring.id), 'data-id': recurring.id,
        },
        el('td', {},
          el('div', { class: 'title' }, link(recurringPath(recurring.id), {}, recurring.id)),
          el('div', { class: 'sub' }, recurring.display_name)),
        el('td', { 'data-label': 'Schedule' }, schedule(recurring)),
        el('td', { class: 'time', 'data-label': 'Next' }, recurring.enabled ? timeAgo(recurring.next_run_at) : '—'),
        el('td', { class: 'time', 'data-label': 'Last' }, lastRun(recurring)),
        el('td', { 'data-label': 'Status' }, recurringStatus(recurring)),
        el('td', {}, el('div', { class: 'actions' }, recurringActions(recurring, true))))));
      },
    },
  };
}

async function recurringJobPage(main, _search, id) {
  const head = el('div', {});
  const facts = el('div', { class: 'card-body' }, el('div', { class: 'empty' }, 'Loading…'));
  const payload = el('pre', { class: 'json', id: 'recurring-arguments' });
  const runs = el('tbody', {}, emptyRow(5, 'Loading…'));
  const runsNote = el('span', { class: 'note' });
  fill(main, head,
    el('div', { class: 'stack' },
      el('section', { class: 'card' }, facts),
      card('Arguments of each run', null, el('div', { class: 'card-body' }, payload)),
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h2', {}, 'Recent runs'), runsNote),
        el('div', { class: 'table-wrap' }, el('table', { class: 'responsive', id: 'runs' }, jobsTableHead(), runs)))));
  let shown = null;
  try {
    shown = await api('GET', '/api' + recurringPath(id));
  } catch (error) {
    toast(error.message, 'error');
  }

  return {
    title: id,
    topics: ['recurring', 'jobs'],
    // The runs: the latest jobs of the job this schedule creates.
    params: shown ? { name: shown.job_name, limit: 10 } : { limit: 1 },
    on: {
      recurring(data) {
        const recurring = data.items.find((item) => item.id === id);
        if (!recurring) {
          fill(head, pageHead(id, 'This recurring job does not exist (any more).', null,
            [link('/recurring-jobs', {}, 'Recurring jobs')]));
          fill(facts, el('div', { class: 'empty' }, 'Deleted, or never stored.'));
          return;
        }
        shown = recurring;
        fill(head, pageHead(recurring.id,
          [recurring.display_name, ' · ', el('span', { class: 'mono' }, recurring.job_name)],
          recurringActions(recurring, false),
          [link('/recurring-jobs', {}, 'Recurring jobs')]));
        fill(facts, el('dl', { class: 'facts', id: 'recurring-facts' },
          [
            ['Schedule', schedule(recurring)],
            ['Status', recurringStatus(recurring)],
            ['Next run', recurring.enabled ? timeAgo(recurring.next_run_at) : '—'],
            ['Last run', lastRun(recurring)],
            ['Missed ticks', missed(recurring.missed)],
            ['Overlap', recurring.allow_overlap ? 'allowed' : 'waits for the previous run'],
            ['Retries', recurring.max_retries === null ? 'server default' : number(recurring.max_retries)],
            ['Declared', recurring.source === 'Code' ? 'in code (#[recurring])' : 'through the API'],
            ['Labels', recurring.labels.length ? labels(recurring.labels) : '—'],
            ['Created', timeAgo(recurring.created_at)],
            ['Updated', timeAgo(recurring.updated_at)],
          ].map(([term, value]) => el('div', {}, el('dt', {}, term), el('dd', {}, value)))));
        payload.textContent = JSON.stringify(recurring.payload, null, 2);
        fill(runsNote, 'jobs named ', el('span', { class: 'mono' }, recurring.job_name), ', newest first');
      },
      jobs(page) {
        drawJobRows(runs, shown ? page.items : [], 'No runs yet.');
      },
    },
  };
}

function schedule(recurring) {
  const every = /^@every (\d+)ms$/.exec(recurring.schedule);
  return el('div', {},
    el('code', {}, every ? `every ${duration(Number(every[1]))}` : recurring.schedule),
    el('div', { class: 'sub' }, recurring.zone));
}

function lastRun(recurring) {
  if (!recurring.last_run_at) return el('span', { class: 'note' }, 'never');
  const when = timeAgo(recurring.last_run_at);
  return recurring.last_job_id ? link(jobPath(recurring.last_job_id), { title: 'Open the run' }, when) : when;
}

function recurringStatus(recurring) {
  if (recurring.enabled && recurring.error) {
    return el('span', {}, el('span', { class: 'pill off' }, 'In error'),
      el('div', { class: 'sub' }, recurring.error));
  }
  if (recurring.enabled) return el('span', { class: 'pill on' }, 'Enabled');
  return el('span', {}, el('span', { class: 'pill off' }, 'Disabled'),
    recurring.disabled_reason ? el('div', { class: 'sub' }, recurring.disabled_reason) : null);
}

function missed(policy) {
  if (policy === 'skip') return 'skipped';
  if (policy === 'run_once') return 'run once';
  if (policy && policy.catch_up) return `caught up (at most ${policy.catch_up.max})`;
  return JSON.stringify(policy);
}

/** Trigger, enable or disable, delete: small buttons in the list, full ones on the page. */
function recurringActions(recurring, small) {
  const path = '/api' + recurringPath(recurring.id);
  const size = small ? 'small' : '';
  const trigger = el('button', {
    class: `${size} ${small ? '' : 'primary'}`, 'data-action': 'trigger',
    onclick: () => act(trigger, async () => {
      const run = await api('POST', `${path}/trigger`);
      toast(['Triggered ', recurring.id, ': ', link(jobPath(run.job_id), {}, 'open the run')]);
    }),
  }, 'Trigger now');
  const toggle = el('button', {
    class: size, 'data-action': recurring.enabled ? 'disable' : 'enable',
    onclick: () => act(toggle, async () => {
      await api('POST', `${path}/${recurring.enabled ? 'disable' : 'enable'}`);
      toast(`${recurring.id} ${recurring.enabled ? 'disabled' : 'enabled'}.`);
    }),
  }, recurring.enabled ? 'Disable' : 'Enable');
  const remove = el('button', {
    class: `${size} danger`, 'data-action': 'delete',
    onclick() {
      if (!window.confirm(`Delete the recurring job ${recurring.id}? Its past runs stay.`)) return;
      act(remove, async () => {
        await api('DELETE', path);
        toast(`${recurring.id} deleted.`);
        if (!small) navigate(BASE + '/recurring-jobs');
      });
    },
  }, 'Delete');
  return [trigger, toggle, remove];
}
