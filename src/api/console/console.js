// callveil tenant console: sign in with a tenant token, switch recording
// consent per extension, watch the live (already pseudonymised) call feed.
// Plain DOM, no framework; text is always set with textContent.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'callveil.token';
  const MAX_FEED = 200;
  let token = sessionStorage.getItem(KEY);
  let tenant = null;
  let socket = null;
  let retry = null;
  const rows = new Map(); // extension -> update(entry), so a change seen on the feed does not rebuild the table (focus stays)

  async function api(path, init = {}) {
    const res = await fetch(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.error || `HTTP ${res.status}`), { status: res.status, body });
    return body;
  }

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') e.textContent = v;
      else if (k in e) e[k] = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  const clock = (iso) => {
    const d = iso ? new Date(iso) : new Date();
    return el('time', { dateTime: d.toISOString(), text: d.toLocaleTimeString() });
  };

  function prepend(list, li) {
    list.prepend(li);
    while (list.children.length > MAX_FEED) list.lastElementChild.remove();
  }

  async function signIn(t) {
    token = t;
    const me = await api('/v1/me');
    sessionStorage.setItem(KEY, token);
    $('sign-in').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    $('who').textContent = me.role === 'operator' ? 'Signed in as operator' : `Signed in for tenant ${me.tenant}`;
    const select = $('tenant-select');
    select.replaceChildren(...me.tenants.map((id) => el('option', { value: id, text: id })));
    $('tenant-select-label').hidden = me.tenants.length < 2;
    await open(me.tenants[0]);
  }

  async function open(id) {
    tenant = id;
    await Promise.all([loadExtensions(), loadChanges()]);
    connect();
  }

  async function loadExtensions() {
    const { extensions } = await api(`/v1/tenants/${encodeURIComponent(tenant)}/extensions`);
    rows.clear();
    $('ext-rows').replaceChildren(...extensions.map(row));
    if (extensions.length === 0)
      $('ext-status').textContent = 'No extensions known yet: they appear once configured or seen on a call.';
  }

  function lastChange(e) {
    return e.changedAt
      ? `${new Date(e.changedAt).toLocaleString()} by ${e.changedBy}`
      : 'never changed (off by default)';
  }

  function row(e) {
    const input = el('input', { type: 'checkbox', role: 'switch', checked: e.recording, id: `rec-${e.extension}` });
    input.setAttribute('aria-checked', String(e.recording));
    const label = el(
      'label',
      { className: 'switch', htmlFor: input.id },
      input,
      el('span', { text: e.recording ? 'On' : 'Off' }),
    );
    label.setAttribute('aria-label', `Recording for extension ${e.extension}`);
    const changed = el('td', { className: 'small muted', text: lastChange(e) });
    const show = (r) => {
      input.checked = r.recording;
      input.setAttribute('aria-checked', String(r.recording));
      label.lastElementChild.textContent = r.recording ? 'On' : 'Off';
      changed.textContent = lastChange(r);
    };
    rows.set(e.extension, show);
    input.addEventListener('change', async () => {
      const want = input.checked;
      input.disabled = true;
      try {
        const r = await api(`/v1/tenants/${encodeURIComponent(tenant)}/extensions/${encodeURIComponent(e.extension)}`, {
          method: 'PUT',
          body: JSON.stringify({ recording: want }),
        });
        show(r);
        $('ext-status').textContent = `Recording for extension ${e.extension} is now ${r.recording ? 'on' : 'off'}.`;
        loadChanges().catch(() => undefined);
      } catch (err) {
        input.checked = !want;
        $('ext-status').textContent = `Could not change extension ${e.extension}: ${err.message}.`;
      } finally {
        input.disabled = false;
        input.focus();
      }
    });
    return el('tr', { id: `ext-${e.extension}` }, el('td', { text: e.extension }), el('td', {}, label), changed);
  }

  async function loadChanges() {
    const { changes } = await api(`/v1/tenants/${encodeURIComponent(tenant)}/consent-changes?limit=20`);
    $('changes').replaceChildren(
      ...changes.map((c) =>
        el(
          'li',
          {},
          clock(c.changedAt),
          `Extension ${c.extension}: recording ${c.recording ? 'on' : 'off'} (${c.changedBy})`,
        ),
      ),
    );
  }

  function describe(f) {
    switch (f.type) {
      case 'call.started':
        return `Call ${f.callId} started`;
      case 'call.answered':
        return `Call ${f.callId} answered`;
      case 'call.ended':
        return `Call ${f.callId} ended`;
      case 'recording':
        return el(
          'span',
          {},
          `Call ${f.callId ?? '(unknown)'}: recording `,
          el('span', { className: `tag-${f.outcome}`, text: f.outcome }),
        );
      case 'record':
        return `Record ${f.record.id}: ${f.record.disposition}, ${f.record.billSec}s billed, caller ${f.record.caller.kind}${f.record.caller.token ? ` ${f.record.caller.token.slice(0, 8)}…` : ''}, recording ${f.record.recording}`;
      case 'consent':
        return `Extension ${f.extension}: recording ${f.recording ? 'on' : 'off'} (${f.changedBy})`;
      case 'dropped':
        return 'The feed fell behind and was cut off; reconnecting.';
      default:
        return null;
    }
  }

  function connect() {
    if (socket) socket.close();
    clearTimeout(retry);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/v1/tenants/${encodeURIComponent(tenant)}/live`);
    socket = ws;
    const state = $('feed-state');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (m) => {
      let f;
      try {
        f = JSON.parse(m.data);
      } catch {
        return;
      }
      if (f.type === 'hello') {
        state.textContent = 'live';
        state.className = 'pill live';
        return;
      }
      if (f.type === 'consent') {
        const show = rows.get(f.extension);
        if (show) show(f);
        else loadExtensions().catch(() => undefined);
      }
      const text = describe(f);
      if (text !== null)
        prepend(f.type === 'consent' ? $('changes') : $('feed'), el('li', {}, clock(f.at || f.changedAt), text));
    };
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      state.textContent = 'offline';
      state.className = 'pill';
      if (ev.code !== 4001 && ev.code !== 4003) retry = setTimeout(connect, 2000);
    };
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    token = null;
    if (socket) {
      const s = socket;
      socket = null;
      s.close();
    }
    $('app').hidden = true;
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
  if (token) signIn(token).catch(() => signOut());
})();
