// One batch: its progress (done, failed, total) as a bar, its fan-in jobs, and its
// members a page at a time. Requeue and delete act on the batch as one; the page
// follows it live.

function batchPage(main, search, id) {
  const after = search.get('after') || '';
  const head = el('div', {});
  const facts = el('div', {}, el('div', { class: 'card empty' }, 'Loading…'));
  const rows = el('tbody', {}, emptyRow(5, 'Loading…'));
  const pager = el('div', { class: 'pager' });
  const path = '/api/batches/' + encodeURIComponent(id);

  const requeue = el('button', {
    class: 'primary', id: 'requeue',
    onclick: () => act(requeue, async () => {
      const result = await api('POST', path + '/requeue');
      toast(`Requeued ${plural(result.count, 'failed member')}.`);
    }),
  }, 'Requeue failed');
  const remove = el('button', {
    class: 'danger', id: 'delete',
    onclick() {
      if (!window.confirm('Delete this batch? Its members and its fan-in will not run (again).')) return;
      act(remove, async () => {
        const result = await api('DELETE', path);
        toast(`Deleted ${plural(result.count, 'member')}.`);
      });
    },
  }, 'Delete');

  fill(main, head, el('div', { class: 'stack' }, facts,
    el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Members'), el('span', { class: 'note' }, 'newest first')),
      el('div', { class: 'table-wrap' }, el('table', { class: 'responsive', id: 'members' }, jobsTableHead(), rows)),
      pager)));

  function draw(batch) {
    const done = batch.succeeded + batch.failed + batch.deleted;
    requeue.dataset.disabled = String(batch.failed === 0);
    requeue.disabled = requeue.dataset.disabled === 'true';
    fill(head, pageHead(batch.label || 'Batch',
      [el('span', { class: 'mono' }, batch.id), ' · created ', timeAgo(batch.created_at)],
      [requeue, remove],
      [link('/jobs', {}, 'Jobs'), ' / ', 'Batch']));
    fill(facts, card('Progress', `${number(done)} of ${number(batch.total)} ended`,
      el('div', { class: 'card-body', id: 'batch-progress' },
        batchBar(batch),
        el('dl', { class: 'facts', id: 'batch-counts' },
          [['Succeeded', batch.succeeded], ['Failed', batch.failed], ['Deleted', batch.deleted],
            ['Running', batch.running], ['Waiting', batch.waiting], ['Total', batch.total]]
            .map(([term, value]) => el('div', {}, el('dt', {}, term), el('dd', {}, number(value))))
            .concat([
              batch.then_id ? el('div', {}, el('dt', {}, 'Then'), el('dd', {}, link(jobPath(batch.then_id), { id: 'then' }, 'fan-in job'))) : null,
              batch.on_failure_id ? el('div', {}, el('dt', {}, 'On failure'), el('dd', {}, link(jobPath(batch.on_failure_id), { id: 'on-failure' }, 'on-failure job'))) : null,
            ])))));
    drawJobRows(rows, batch.members.items, 'No members.');
    const here = '/batches/' + encodeURIComponent(id);
    fill(pager,
      el('span', {}, after ? link(here, {}, '← Newest') : 'Newest first'),
      batch.members.next
        ? link(here + query({ after: batch.members.next }), { rel: 'next' }, 'Older →')
        : el('span', {}, batch.members.items.length ? 'End of the list' : ''));
  }

  return {
    title: 'Batch',
    topics: ['batch'],
    params: { id, after, limit: PAGE_SIZE },
    on: {
      batch(next) {
        draw(next);
        document.title = `${next.label || 'Batch'} · jobs`;
      },
      failure() {
        fill(facts, el('div', { class: 'card empty' }, 'This batch cannot be read.'));
      },
    },
  };
}

/** Succeeded, failed and deleted members as the parts of one bar over the total. */
function batchBar(batch) {
  const total = Math.max(0, Number(batch.total) || 0);
  const share = (n) => (total ? (100 * Math.min(total, n)) / total : 0);
  const part = (n, kind) => {
    const piece = el('div', { class: `part ${kind}` });
    piece.style.width = `${share(n)}%`;
    return piece;
  };
  const done = batch.succeeded + batch.failed + batch.deleted;
  return el('div', {},
    el('div', {
      class: 'progress batch', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done,
    }, part(batch.succeeded, 'succeeded'), part(batch.failed, 'failed'), part(batch.deleted, 'deleted')),
    el('div', { class: 'progress-label' },
      el('span', {}, `${number(done)} of ${number(total)} · ${number(batch.failed)} failed`),
      el('span', {}, `${Math.round(share(done))}%`)));
}
