// Jobs by state: tabs per state, search, job-name filter, keyset paging, bulk actions.
// The rows update live; a row whose state changed flashes.

const PAGE_SIZE = 50;

function jobsPage(main, search) {
  const filters = {
    state: search.get('state') || '',
    name: search.get('name') || '',
    search: search.get('search') || '',
    label: search.get('label') || '',
  };
  const after = search.get('after') || '';
  const filtered = Boolean(filters.state || filters.name || filters.search || filters.label);

  const tabs = el('nav', { class: 'state-tabs', 'aria-label': 'States' });
  const rows = el('tbody', {}, emptyRow(5, 'Loading…'));
  const pager = el('div', { class: 'pager' });
  const names = el('datalist', { id: 'job-names' });
  const searchInput = el('input', {
    type: 'search', name: 'search', value: filters.search, placeholder: 'Search by name…',
    'aria-label': 'Search jobs by display name or job name',
  });
  const nameInput = el('input', {
    name: 'name', value: filters.name, list: 'job-names', placeholder: 'Job name', 'aria-label': 'Job name',
  });
  const form = el('form', {
    class: 'filters', role: 'search',
    onsubmit(event) {
      event.preventDefault();
      navigate(BASE + '/jobs' + query({ ...filters, search: searchInput.value.trim(), name: nameInput.value.trim() }));
    },
  }, searchInput, nameInput, names, el('button', { type: 'submit' }, 'Filter'),
  filtered ? link('/jobs', { class: 'note' }, 'Clear filters') : null);

  fill(main,
    pageHead(filters.label === TOOL_CALL_LABEL ? 'Tool calls' : 'Jobs', describe(filters)),
    el('section', { class: 'card' },
      tabs, form,
      filtered ? bulkBar(filters) : null,
      el('div', { class: 'table-wrap' }, el('table', { class: 'responsive', id: 'jobs' }, jobsTableHead(), rows)),
      pager));

  const drawTabs = (stats) => fill(tabs, [''].concat(STATES).map((state) => link(
    '/jobs' + query({ ...filters, state }),
    { class: `${state ? stateClass(state) : ''}${state === filters.state ? ' active' : ''}` },
    state || 'All',
    el('span', { class: 'n' }, number(state ? stats.counts[state] : stats.total)))));
  drawTabs(latestStats || { counts: {}, total: 0 });
  api('GET', '/api/registered-jobs')
    .then((data) => fill(names, data.items.map((name) => el('option', { value: name }))))
    .catch(() => {});

  return {
    title: filters.label === TOOL_CALL_LABEL ? 'Tool calls' : filters.state ? `${filters.state} jobs` : 'Jobs',
    topics: ['jobs'],
    params: { ...filters, after, limit: PAGE_SIZE },
    on: {
      stats: drawTabs,
      jobs(page) {
        drawJobRows(rows, page.items, filtered ? 'No job matches these filters.' : 'No jobs yet.');
        fill(pager,
          el('span', {}, after ? link('/jobs' + query(filters), {}, '← Newest') : `Newest first`),
          page.next
            ? link('/jobs' + query({ ...filters, after: page.next }), { rel: 'next' }, 'Older →')
            : el('span', {}, page.items.length ? 'End of the list' : ''));
      },
    },
  };
}

function describe(filters) {
  const parts = [];
  if (filters.state) parts.push(`in state ${filters.state}`);
  if (filters.name) parts.push(`named ${filters.name}`);
  if (filters.search) parts.push(`matching “${filters.search}”`);
  if (filters.label === TOOL_CALL_LABEL) parts.push('created by an agent\'s tool call');
  else if (filters.label) parts.push(`labelled ${filters.label}`);
  return parts.length ? `Jobs ${parts.join(', ')}, newest first.` : 'Every job, newest first.';
}

/** Requeue or delete every job the filters match, after a confirmation. */
function bulkBar(filters) {
  const what = describe(filters).replace(/, newest first\.$/, '').replace(/^Jobs /, '');
  const bulk = (action, verb) => el('button', {
    class: `small${action === 'delete' ? ' danger' : ''}`,
    onclick(event) {
      const button = event.currentTarget;
      if (!window.confirm(`${verb} every job ${what}?`)) return;
      act(button, async () => {
        const result = await api('POST', `/api/jobs/${action}`, filters);
        toast(`${verb === 'Requeue' ? 'Requeued' : 'Deleted'} ${plural(result.count, 'job')}.`);
      });
    },
  }, `${verb} all`);
  return el('div', { class: 'bulk' },
    el('span', {}, `Every job ${what}:`), el('span', { class: 'spacer' }),
    bulk('requeue', 'Requeue'), bulk('delete', 'Delete'));
}

function jobsTableHead() {
  return el('thead', {}, el('tr', {},
    el('th', {}, 'Job'), el('th', {}, 'State'), el('th', { class: 'num' }, 'Attempt'),
    el('th', {}, 'Created'), el('th', {}, 'Updated')));
}

const shownStates = new WeakMap();

/** The rows of a job table; rows whose state changed since the last draw flash. */
function drawJobRows(tbody, jobs, emptyText) {
  const before = shownStates.get(tbody);
  const now = new Map();
  if (!jobs.length) {
    fill(tbody, emptyRow(5, emptyText));
  } else {
    fill(tbody, jobs.map((job) => {
      now.set(job.id, job.state);
      const changed = before && before.get(job.id) !== job.state;
      return el('tr', {
        class: `link-row${changed ? ' flash' : ''}`, 'data-href': BASE + jobPath(job.id), 'data-id': job.id,
      },
      el('td', {},
        el('div', { class: 'title' }, link(jobPath(job.id), {}, job.display_name || job.name)),
        el('div', { class: 'sub' }, el('span', { class: 'mono' }, job.name), labels(job.labels))),
      el('td', { 'data-label': 'State' }, badge(job.state),
        job.progress && job.state === 'Processing' ? meter(job.progress.done, job.progress.total) : null),
      el('td', { class: 'num', 'data-label': 'Attempt' }, number(job.attempt)),
      el('td', { class: 'time hide-phone' }, timeAgo(job.created_at)),
      el('td', { class: 'time', 'data-label': 'Updated' }, timeAgo(job.updated_at)));
    }));
  }
  shownStates.set(tbody, now);
}
