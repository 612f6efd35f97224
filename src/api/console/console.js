// callveil tenant console: the tenant's recent calls, consent per extension
// (add, switch, bulk switch, history), a picture of the day, and an honest
// status of the PBX link and the live feed. Everything shown comes from call
// records after privacy (tokens, extensions as the tenant's rules show them).
// Plain DOM, no framework; text is always set with textContent.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'callveil.token';
  const MAX_CALLS = 500;
  let token = sessionStorage.getItem(KEY);
  let tenant = null;
  let socket = null;
  let retry = null;
  let activityTimer = null;
  let opened = 0; // which open() the async answers belong to (switching tenant mid-load)
  const st = {
    calls: [], // {record, recordingReason, extensions}, newest first
    since: null,
    timeZone: 'UTC',
    extensionMethod: null,
    activity: null,
    day: null,
    pbx: null, // {up, reason} from the server; null while the feed is not connected
    feedUp: false,
    inProgress: new Set(),
    counts: new Map(), // extension label -> counts
  };
  const rows = new Map(); // extension -> {show(entry), counts(c), selected()}
  const charts = [];

  async function api(path, init = {}) {
    const res = await fetch(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.error || `HTTP ${res.status}`), { status: res.status, body });
    return body;
  }
  const tenantPath = (p) => `/v1/tenants/${encodeURIComponent(tenant)}${p}`;

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') e.textContent = v;
      else if (k in e) e[k] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // ---------------------------------------------------------------- time

  const fmtCache = new Map();
  function fmt(opts) {
    const k = st.timeZone + JSON.stringify(opts);
    if (!fmtCache.has(k)) fmtCache.set(k, new Intl.DateTimeFormat(undefined, { timeZone: st.timeZone, ...opts }));
    return fmtCache.get(k);
  }
  function localDate(iso) {
    const p = Object.fromEntries(
      new Intl.DateTimeFormat('en-CA', { timeZone: st.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
        .formatToParts(new Date(iso))
        .map((x) => [x.type, x.value]),
    );
    return `${p.year}-${p.month}-${p.day}`;
  }
  const when = (iso) =>
    el('time', {
      dateTime: iso,
      text: fmt({ month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(
        new Date(iso),
      ),
    });
  const sinceText = () =>
    st.since ? fmt({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(st.since)) : 'start';
  const secs = (n) => (n >= 60 ? `${Math.floor(n / 60)}m ${String(n % 60).padStart(2, '0')}s` : `${n}s`);

  // ---------------------------------------------------------------- what a record says

  const DIRECTIONS = { inbound: 'Inbound', outbound: 'Outbound', internal: 'Internal', transit: 'Transit' };
  const OUTCOMES = {
    answered: 'Answered',
    'pbx-answered': 'Answered by the PBX',
    'no-answer': 'No answer',
    cancelled: 'Cancelled by caller',
    abandoned: 'Abandoned in queue',
    busy: 'Busy',
    failed: 'Failed',
    congestion: 'Congestion',
    unknown: 'Unknown (AMI gap)',
  };
  const ANSWERED = new Set(['answered', 'pbx-answered']);
  const MISSED = new Set(['no-answer', 'cancelled', 'abandoned']);
  const outcomeGroup = (o) => (ANSWERED.has(o) ? 'answered' : MISSED.has(o) ? 'missed' : 'other');
  const REASONS = {
    'no-consent': 'an extension on the call has recording off',
    'no-target': 'no extension on the call to ask',
    'unknown-tenant': 'the call had no known tenant',
    'store-unreadable': 'the consent store could not be read',
    'unnamed-party': 'a phone on the call has no extension to ask',
    'too-many-parties': 'more parties on the call than can be checked',
  };

  /** A party as the record shows it: never more than the record holds. */
  function party(p) {
    if (p === undefined) return 'redacted';
    if (p === null) return '—';
    switch (p.kind) {
      case 'extension':
        return p.extension ?? p.token ?? 'extension (redacted)';
      case 'withheld':
        return 'withheld';
      case 'invalid':
        return 'invalid number';
      case 'none':
        return '—';
      case 'queue':
        return `queue ${p.queue ?? '(unnamed)'}`;
      case 'application':
        return `the PBX (${p.app ?? 'application'})`;
      default:
        return p.token ?? p.fpe ?? p.prefix ?? 'redacted';
    }
  }
  function recordingText(e) {
    const r = e.record.recording;
    if (r === 'none') return 'none';
    if (r === 'kept') return 'kept: every extension consented';
    if (r === 'blocked')
      return `blocked: ${e.recordingReason ? REASONS[e.recordingReason] || e.recordingReason : 'stopped without consent'}`;
    if (r === 'prevented') return 'prevented: the dialplan did not start it';
    if (r === 'stop-failed') return 'stop failed: recorded without consent, the gateway could not stop it';
    return r;
  }
  function queueText(q) {
    if (!q) return '';
    const wait = q.waitSec === null ? '' : `, waited ${secs(q.waitSec)}`;
    return `${q.queue ?? '(unnamed)'}${wait}${q.abandoned ? ', abandoned' : q.answered ? ', answered' : ''}`;
  }
  const transfersText = (ts) => ts.map((t) => `${t.kind} ${party(t.from)} → ${party(t.to)}`).join('; ');

  // ---------------------------------------------------------------- calls

  function addCall(entry) {
    if (!entry || !entry.record) return;
    st.calls = st.calls.filter((c) => c.record.id !== entry.record.id);
    st.calls.push(entry);
    st.calls.sort((a, b) => (a.record.startedAt < b.record.startedAt ? 1 : -1));
    if (st.calls.length > MAX_CALLS) st.calls.length = MAX_CALLS;
  }

  function visibleCalls() {
    const ext = $('f-ext').value;
    const dir = $('f-dir').value;
    const out = $('f-out').value;
    return st.calls.filter(
      (c) =>
        (ext === '' || c.extensions.includes(ext)) &&
        (dir === '' || c.record.direction === dir) &&
        (out === '' || outcomeGroup(c.record.outcome) === out),
    );
  }

  function renderExtensionFilter() {
    const select = $('f-ext');
    const want = select.value;
    const labels = [...new Set(st.calls.flatMap((c) => c.extensions))].sort((a, b) =>
      a.localeCompare(b, 'en', { numeric: true }),
    );
    if (want !== '' && !labels.includes(want)) labels.push(want);
    select.replaceChildren(
      el('option', { value: '', text: 'All' }),
      ...labels.map((l) => el('option', { value: l, text: l })),
    );
    select.value = want;
  }

  function callRow(e) {
    const r = e.record;
    const rec = el('span', { className: `tag-${r.recording}`, text: recordingText(e) });
    const cells = [
      ['Time', el('td', {}, when(r.startedAt))],
      ['Direction', el('td', { text: DIRECTIONS[r.direction] || r.direction })],
      ['Extensions', el('td', { className: 'ext', text: e.extensions.join(', ') || '—' })],
      ['Caller', el('td', { className: 'tok', text: party(r.caller) })],
      ['Outcome', el('td', { text: OUTCOMES[r.outcome] || r.outcome })],
      ['Talk / ring', el('td', { className: 'num', text: `${secs(r.talkSec)} / ${secs(r.ringSec)}` })],
      ['Recording', el('td', {}, rec)],
      ['Queue', el('td', { text: queueText(r.queue) })],
      ['Transfers', el('td', { className: 'tok', text: transfersText(r.transfers) })],
    ];
    // data-label: on narrow screens each row becomes a block of "label: value" lines (console.css).
    // Explicit roles: a table shown as blocks keeps its rows and cells for screen readers.
    for (const [label, td] of cells) {
      td.dataset.label = label;
      td.setAttribute('role', 'cell');
    }
    return el('tr', { className: `out-${outcomeGroup(r.outcome)}`, role: 'row' }, ...cells.map(([, td]) => td));
  }

  function renderCalls() {
    renderExtensionFilter();
    const shown = visibleCalls();
    $('call-rows').replaceChildren(...shown.map(callRow));
    $('calls-count').textContent = st.calls.length === 0 ? '' : `Showing ${shown.length} of ${st.calls.length} calls.`;
    $('calls-note').textContent =
      `Calls that ended since the gateway started (${sinceText()}), newest first, at most ${MAX_CALLS}; kept in the gateway's memory only. Times in ${st.timeZone}.`;
    const empty = $('calls-empty');
    empty.hidden = shown.length > 0;
    empty.textContent =
      st.calls.length === 0
        ? `No calls yet since the gateway started (${sinceText()}). A call appears here when it ends; if calls are being made and none appear, check the PBX link at the top.`
        : 'No call matches these filters. Choose "All" in a filter, or use "Clear filters".';
    $('export').disabled = shown.length === 0;
  }

  // Spreadsheets run a cell that starts with = + - @ (or a tab / CR) as a formula: such cells get a leading '.
  function csvCell(v) {
    let s = String(v ?? '');
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }
  function exportCsv() {
    const head = [
      'started_at',
      'direction',
      'outcome',
      'ring_sec',
      'talk_sec',
      'extensions',
      'caller',
      'first_called',
      'answered_by',
      'recording',
      'recording_reason',
      'queue',
      'transfers',
      'call_id',
    ];
    const lines = [head.join(',')];
    for (const e of visibleCalls()) {
      const r = e.record;
      lines.push(
        [
          r.startedAt,
          r.direction,
          r.outcome,
          r.ringSec,
          r.talkSec,
          e.extensions.join(' '),
          party(r.caller),
          party(r.firstCalled),
          party(r.answeredBy),
          r.recording,
          e.recordingReason ?? '',
          queueText(r.queue),
          transfersText(r.transfers),
          r.callId,
        ]
          .map(csvCell)
          .join(','),
      );
    }
    const url = URL.createObjectURL(new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' }));
    const a = el('a', { href: url, download: `calls-${tenant}-${new Date().toISOString().slice(0, 10)}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async function loadCalls(my) {
    const body = await api(tenantPath(`/calls?limit=${MAX_CALLS}`));
    if (my !== opened) return;
    st.since = body.since;
    st.extensionMethod = body.extensionMethod;
    st.calls = [];
    for (const c of body.calls) addCall(c);
    renderCalls();
  }

  // ---------------------------------------------------------------- extensions

  function lastChange(e) {
    return e.changedAt
      ? `${fmt({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(e.changedAt))} by ${e.changedBy}`
      : 'never changed (off by default)';
  }

  function historyItem(c) {
    return el(
      'li',
      {},
      when(c.changedAt),
      `Extension ${c.extension}: recording ${c.recording ? 'on' : 'off'}${c.previous === c.recording ? ' (unchanged)' : ''} by ${c.changedBy}`,
    );
  }

  function extRow(e) {
    const ext = e.extension;
    const pick = el('input', { type: 'checkbox', id: `pick-${ext}` });
    pick.setAttribute('aria-label', `Select extension ${ext}`);
    pick.addEventListener('change', updateBulk);
    const input = el('input', { type: 'checkbox', role: 'switch', checked: e.recording, id: `rec-${ext}` });
    input.setAttribute('aria-checked', String(e.recording));
    const label = el(
      'label',
      { className: 'switch', htmlFor: input.id },
      input,
      el('span', { text: e.recording ? 'On' : 'Off' }),
    );
    label.setAttribute('aria-label', `Recording for extension ${ext}`);
    const changed = el('td', { className: 'small muted', text: lastChange(e) });
    const cells = ['calls', 'answered', 'kept', 'blocked', 'prevented'].map(() =>
      el('td', { className: 'num', text: '0' }),
    );
    const histBtn = el('button', { type: 'button', className: 'link', text: 'Show' });
    histBtn.setAttribute('aria-expanded', 'false');
    histBtn.setAttribute('aria-controls', `hist-${ext}`);
    // The accessible name starts with the visible word (Show / Hide), so speech input finds it.
    const histName = (verb) => histBtn.setAttribute('aria-label', `${verb} consent history of extension ${ext}`);
    histName('Show');
    const histList = el('ol', { className: 'feed', id: `hist-list-${ext}` });
    histList.setAttribute('aria-label', `Consent history of extension ${ext}, newest first`);
    const histRow = el(
      'tr',
      { id: `hist-${ext}`, className: 'hist', hidden: true },
      el('td', { colSpan: 10 }, histList),
    );
    async function loadHistory() {
      const { changes } = await api(tenantPath(`/consent-history?extension=${encodeURIComponent(ext)}&limit=100`));
      histList.replaceChildren(...changes.map(historyItem));
      if (changes.length === 0) histList.append(el('li', { text: 'No change yet: recording is off by default.' }));
    }
    histBtn.addEventListener('click', () => {
      const open = histRow.hidden;
      histRow.hidden = !open;
      histBtn.textContent = open ? 'Hide' : 'Show';
      histName(open ? 'Hide' : 'Show');
      histBtn.setAttribute('aria-expanded', String(open));
      if (open) loadHistory().catch((err) => ($('ext-status').textContent = `History not loaded: ${err.message}.`));
    });
    const show = (r) => {
      input.checked = r.recording;
      input.setAttribute('aria-checked', String(r.recording));
      label.lastElementChild.textContent = r.recording ? 'On' : 'Off';
      changed.textContent = lastChange(r);
      if (!histRow.hidden) loadHistory().catch(() => undefined);
    };
    const counts = (c) => {
      for (const [i, k] of ['calls', 'answered', 'kept', 'blocked', 'prevented'].entries())
        cells[i].textContent = String(c ? c[k] : 0);
    };
    counts(st.counts.get(ext));
    rows.set(ext, { show, counts, pick });
    input.addEventListener('change', async () => {
      const want = input.checked;
      input.disabled = true;
      try {
        const r = await api(tenantPath(`/extensions/${encodeURIComponent(ext)}`), {
          method: 'PUT',
          body: JSON.stringify({ recording: want }),
        });
        show(r);
        $('ext-status').textContent = `Recording for extension ${ext} is now ${r.recording ? 'on' : 'off'}.`;
        loadChanges(opened).catch(() => undefined);
      } catch (err) {
        input.checked = !want;
        $('ext-status').textContent = `Could not change extension ${ext}: ${err.message}.`;
      } finally {
        input.disabled = false;
        input.focus();
      }
    });
    const tr = el(
      'tr',
      { id: `ext-${ext}` },
      el('td', {}, pick),
      el('th', { scope: 'row', text: ext }),
      el('td', {}, label),
      ...cells,
      changed,
      el('td', {}, histBtn),
    );
    return [tr, histRow];
  }

  function renderExtensions(extensions) {
    rows.clear();
    $('ext-rows').replaceChildren(...extensions.flatMap(extRow));
    $('ext-empty').hidden = extensions.length > 0;
    $('select-all').checked = false;
    updateBulk();
  }

  async function loadExtensions(my) {
    const { extensions } = await api(tenantPath('/extensions'));
    if (my !== opened) return;
    renderExtensions(extensions);
  }

  function selected() {
    return [...rows.entries()].filter(([, r]) => r.pick.checked).map(([ext]) => ext);
  }
  function updateBulk() {
    const n = selected().length;
    $('bulk-on').disabled = n === 0;
    $('bulk-off').disabled = n === 0;
    $('bulk-on').textContent = `Recording on for selected (${n})`;
    $('bulk-off').textContent = `Recording off for selected (${n})`;
  }
  async function bulk(recording) {
    const exts = selected();
    if (exts.length === 0) return;
    try {
      const { updated } = await api(tenantPath('/extensions'), {
        method: 'PATCH',
        body: JSON.stringify({ extensions: exts.map((extension) => ({ extension, recording })) }),
      });
      for (const u of updated) rows.get(u.extension)?.show(u);
      for (const r of rows.values()) r.pick.checked = false;
      $('select-all').checked = false;
      updateBulk();
      $('ext-status').textContent =
        `Recording ${recording ? 'on' : 'off'} for ${updated.length} extension${updated.length === 1 ? '' : 's'}: ${updated.map((u) => u.extension).join(', ')}.`;
      loadChanges(opened).catch(() => undefined);
    } catch (err) {
      $('ext-status').textContent = `Nothing changed: ${err.message}.`;
    }
  }

  async function addExtension(ev) {
    ev.preventDefault();
    const input = $('add-ext');
    const ext = input.value.trim();
    if (!/^[0-9]{1,6}$/.test(ext)) {
      $('ext-status').textContent = 'An extension is 1 to 6 digits.';
      input.focus();
      return;
    }
    if (rows.has(ext)) {
      $('ext-status').textContent = `Extension ${ext} is already in the list.`;
      $(`rec-${ext}`).focus();
      return;
    }
    try {
      await api(tenantPath(`/extensions/${encodeURIComponent(ext)}`), {
        method: 'PUT',
        body: JSON.stringify({ recording: false }),
      });
      await loadExtensions(opened);
      input.value = '';
      $('ext-status').textContent = `Extension ${ext} added, recording off.`;
      $(`rec-${ext}`)?.focus();
      loadChanges(opened).catch(() => undefined);
    } catch (err) {
      $('ext-status').textContent = `Could not add extension ${ext}: ${err.message}.`;
    }
  }

  async function loadChanges(my) {
    const { changes } = await api(tenantPath('/consent-history?limit=50'));
    if (my !== opened) return;
    $('changes').replaceChildren(...changes.map(historyItem));
    $('changes-empty').hidden = changes.length > 0;
  }

  // ---------------------------------------------------------------- the day

  function sum(hours, k) {
    return hours.reduce((n, h) => n + h[k], 0);
  }

  function renderActivity() {
    const a = st.activity;
    if (!a) return;
    st.counts = new Map(a.extensions.map((c) => [c.extension, c]));
    for (const [ext, r] of rows) r.counts(st.counts.get(ext));
    $('ext-counts-note').textContent =
      st.extensionMethod === 'keep'
        ? `Counts are calls that ended since the gateway started (${sinceText()}); they restart with it.`
        : `Counts restart with the gateway (started ${sinceText()}). This tenant's records show extensions as ${st.extensionMethod === 'redact' ? 'redacted' : 'tokens'}, so calls are not counted under the extension numbers here.`;
    const select = $('day-select');
    const today = localDate(new Date().toISOString());
    const dates = a.days.map((d) => d.date);
    if (!dates.includes(today)) dates.unshift(today);
    if (st.day === null || !dates.includes(st.day))
      st.day = a.days.some((d) => d.date === today) ? today : (a.days[0]?.date ?? today);
    select.replaceChildren(...dates.map((d) => el('option', { value: d, text: d === today ? `${d} (today)` : d })));
    select.value = st.day;
    $('day-select-label').hidden = dates.length < 2;
    renderDay();
  }

  function renderDay() {
    const a = st.activity;
    const d = a.days.find((x) => x.date === st.day);
    const hours = d
      ? d.hours
      : Array.from({ length: 24 }, (_, hour) => ({
          hour,
          answered: 0,
          missed: 0,
          other: 0,
          kept: 0,
          blocked: 0,
          prevented: 0,
        }));
    $('day-title').textContent = `The day: ${st.day}`;
    $('day-note').textContent =
      `Hours in ${a.timeZone} (the tenant's time zone). Counts are calls that ended since the gateway started (${sinceText()}) and restart with it.`;
    const answered = sum(hours, 'answered');
    const missed = sum(hours, 'missed');
    const other = sum(hours, 'other');
    const calls = answered + missed + other;
    $('day-summary').textContent =
      `${calls} call${calls === 1 ? '' : 's'}: ${answered} answered, ${missed} missed, ${other} other (busy, failed, unknown). ` +
      `Recordings: ${sum(hours, 'kept')} kept, ${sum(hours, 'blocked')} blocked${sum(hours, 'prevented') > 0 ? `, ${sum(hours, 'prevented')} prevented` : ''}.`;
    const busy = hours.filter((h) => h.answered + h.missed + h.other + h.kept + h.blocked > 0);
    $('day-rows').replaceChildren(
      ...busy.map((h) =>
        el(
          'tr',
          {},
          el('th', { scope: 'row', text: `${String(h.hour).padStart(2, '0')}:00` }),
          ...['answered', 'missed', 'other', 'kept', 'blocked'].map((k) => el('td', { text: String(h[k]) })),
        ),
      ),
    );
    $('day-charts').hidden = calls === 0;
    const empty = $('day-empty');
    empty.hidden = calls > 0;
    empty.textContent = `No calls on ${st.day} since the gateway started (${sinceText()}). The charts fill in as calls end.`;
    drawCharts(hours);
  }

  function drawCharts(hours) {
    for (const c of charts.splice(0)) c.destroy();
    if ($('day-charts').hidden || typeof window.uPlot !== 'function') return;
    const U = window.uPlot;
    const xs = hours.map((h) => h.hour);
    const bars = (align) => U.paths.bars({ size: [0.42, 24], align });
    const make = (target, series, data) => {
      const width = Math.max(200, target.clientWidth || 300);
      charts.push(
        new U(
          {
            width,
            height: 160,
            legend: { show: false },
            cursor: { show: false },
            scales: { x: { time: false, range: [-0.6, 23.6] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
            axes: [
              {
                values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v).padStart(2, '0') : '')),
                space: 30,
              },
              { values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : '')), size: 36 },
            ],
            series: [{}, ...series],
          },
          [xs, ...data],
          target,
        ),
      );
    };
    make(
      $('chart-calls'),
      [
        { label: 'Answered', fill: '#137333', stroke: '#137333', paths: bars(-1), points: { show: false } },
        { label: 'Missed', fill: '#b3261e', stroke: '#b3261e', paths: bars(1), points: { show: false } },
      ],
      [hours.map((h) => h.answered), hours.map((h) => h.missed)],
    );
    make(
      $('chart-recordings'),
      [
        { label: 'Kept', fill: '#0b5fff', stroke: '#0b5fff', paths: bars(-1), points: { show: false } },
        { label: 'Blocked', fill: '#8a4b00', stroke: '#8a4b00', paths: bars(1), points: { show: false } },
      ],
      [hours.map((h) => h.kept), hours.map((h) => h.blocked)],
    );
  }

  async function loadActivity(my) {
    const a = await api(tenantPath('/activity'));
    if (my !== opened) return;
    st.activity = a;
    st.timeZone = a.timeZone;
    st.since = a.since;
    st.extensionMethod = a.extensionMethod;
    renderActivity();
  }
  function refreshActivitySoon() {
    clearTimeout(activityTimer);
    activityTimer = setTimeout(() => loadActivity(opened).catch(() => undefined), 300);
  }

  // ---------------------------------------------------------------- status

  function renderStatus() {
    const pbx = $('link-pbx');
    const feed = $('link-feed');
    const live = $('live');
    feed.textContent = st.feedUp ? 'Feed: connected' : 'Feed: reconnecting';
    feed.className = st.feedUp ? 'pill ok' : 'pill down';
    if (!st.feedUp || st.pbx === null) {
      pbx.textContent = 'PBX link: unknown';
      pbx.className = 'pill';
    } else {
      pbx.textContent = st.pbx.up ? 'PBX link: up' : `PBX link: down${st.pbx.reason ? ` (${st.pbx.reason})` : ''}`;
      pbx.className = st.pbx.up ? 'pill ok' : 'pill down';
    }
    const isLive = st.feedUp && st.pbx !== null && st.pbx.up;
    live.textContent = isLive ? 'live' : 'not live';
    live.className = isLive ? 'pill live' : 'pill down';
    $('status-text').textContent = !st.feedUp
      ? 'The live feed to this page is down: reconnecting. Calls that end meanwhile appear after it reconnects.'
      : st.pbx && !st.pbx.up
        ? `The gateway has lost its link to the PBX${st.pbx.reason ? ` (${st.pbx.reason})` : ''}: no new calls arrive until it is back. It reconnects by itself; if this lasts, tell your PBX operator.`
        : '';
    $('status-text').hidden = $('status-text').textContent === '';
  }

  function connect() {
    if (socket) socket.close();
    clearTimeout(retry);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/v1/tenants/${encodeURIComponent(tenant)}/live`);
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (m) => {
      let f;
      try {
        f = JSON.parse(m.data);
      } catch {
        return;
      }
      try {
        frame(f);
      } catch (err) {
        // One frame the page cannot show never stops the others.
        console.error('frame not shown', f && f.type, err && err.message);
      }
    };
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      st.feedUp = false;
      st.pbx = null;
      renderStatus();
      if (ev.code !== 4001 && ev.code !== 4003) retry = setTimeout(connect, 2000);
    };
  }

  function frame(f) {
    switch (f.type) {
      case 'hello':
        st.feedUp = true;
        st.pbx = f.pbx || null;
        renderStatus();
        // What ended while the feed was away.
        loadCalls(opened).catch(() => undefined);
        refreshActivitySoon();
        return;
      case 'status':
        st.pbx = f.pbx;
        renderStatus();
        return;
      case 'call':
        addCall({ record: f.record, recordingReason: f.recordingReason ?? null, extensions: f.extensions || [] });
        st.inProgress.delete(f.record.callId);
        renderCalls();
        renderInProgress();
        refreshActivitySoon();
        return;
      case 'call.started':
        st.inProgress.add(f.callId);
        renderInProgress();
        return;
      case 'call.ended':
        st.inProgress.delete(f.callId);
        renderInProgress();
        return;
      case 'consent': {
        const r = rows.get(f.extension);
        if (r) r.show(f);
        else loadExtensions(opened).catch(() => undefined);
        loadChanges(opened).catch(() => undefined);
        return;
      }
      case 'dropped':
        $('status-text').textContent = 'This page fell behind the live feed and was cut off; reconnecting.';
        return;
      default:
        return;
    }
  }
  function renderInProgress() {
    const n = st.inProgress.size;
    $('in-progress').textContent = n === 0 ? '' : `(${n} in progress)`;
  }

  // ---------------------------------------------------------------- sign-in, tenants

  async function signIn(t) {
    token = t;
    const me = await api('/v1/me');
    sessionStorage.setItem(KEY, token);
    $('sign-in').hidden = true;
    $('app').hidden = false;
    $('status').hidden = false;
    $('sign-out').hidden = false;
    $('who').textContent = me.role === 'operator' ? 'Signed in as operator' : `Signed in for tenant ${me.tenant}`;
    const select = $('tenant-select');
    select.replaceChildren(...me.tenants.map((id) => el('option', { value: id, text: id })));
    $('tenant-select-label').hidden = me.tenants.length < 2;
    await open(me.tenants[0]);
  }

  async function open(id) {
    tenant = id;
    const my = ++opened;
    st.calls = [];
    st.activity = null;
    st.day = null;
    st.inProgress.clear();
    st.feedUp = false;
    st.pbx = null;
    $('ext-status').textContent = '';
    renderStatus();
    renderInProgress();
    // Activity first: it carries the time zone the other sections show times in.
    await loadActivity(my);
    await Promise.all([loadExtensions(my), loadChanges(my), loadCalls(my)]);
    if (my === opened) connect();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    token = null;
    opened++;
    if (socket) {
      const s = socket;
      socket = null;
      s.close();
    }
    clearTimeout(retry);
    $('app').hidden = true;
    $('status').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('who').textContent = '';
    $('token').value = '';
    $('token').focus();
  }

  $('sign-in-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('sign-in-error').textContent = '';
    try {
      await signIn($('token').value.trim());
    } catch (err) {
      token = null;
      $('sign-in-error').textContent =
        err.status === 401 ? 'That token was not accepted.' : `Sign-in failed: ${err.message}`;
    }
  });
  $('sign-out').addEventListener('click', signOut);
  $('tenant-select').addEventListener('change', (ev) => open(ev.target.value).catch(() => undefined));
  for (const id of ['f-ext', 'f-dir', 'f-out']) $(id).addEventListener('change', renderCalls);
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('f-clear').addEventListener('click', () => {
    for (const id of ['f-ext', 'f-dir', 'f-out']) $(id).value = '';
    renderCalls();
  });
  $('export').addEventListener('click', exportCsv);
  $('add-form').addEventListener('submit', addExtension);
  $('bulk-on').addEventListener('click', () => bulk(true));
  $('bulk-off').addEventListener('click', () => bulk(false));
  $('select-all').addEventListener('change', (ev) => {
    for (const r of rows.values()) r.pick.checked = ev.target.checked;
    updateBulk();
  });
  $('day-select').addEventListener('change', (ev) => {
    st.day = ev.target.value;
    renderDay();
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => st.activity && renderDay(), 150);
  });
  if (token) signIn(token).catch(() => signOut());
})();
