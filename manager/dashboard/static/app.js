// The Convoy dashboard page (docs/dashboard.md): plain JavaScript, no
// build step. One live stream (/api/watch, Server-Sent Events) brings the
// whole view on every change; every section is drawn again from it. All
// text goes in through textContent (nothing the cluster says is parsed as
// HTML). Actions are shown only to roles that may take them (the manager
// refuses them to the others anyway) and carry the dashboard's header.
'use strict';
(function () {
  const HISTORY = 120; // chart points kept per service (one per state: about every 3 s)
  let session = { id: '', role: '', may: {} };
  let view = { time: 0, nodes: [], services: [], tasks: [], tasksCut: 0 };
  const history = new Map(); // service name -> [{t, cpu, memory}]
  let selected = '';

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const badge = (s) => el('span', { class: `badge ${s}` }, s.replace(/^UPDATE_/, '').toLowerCase());
  const cores = (n) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));
  function bytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${u[i]}`;
  }
  const hostOf = (id) => (view.nodes.find((n) => n.id === id) || {}).hostname || id.slice(0, 12);
  function color(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return `hsl(${h % 360} 60% 45%)`;
  }

  function notice(text, ok) {
    const n = $('notice');
    n.textContent = text;
    n.className = ok ? 'ok' : '';
    n.hidden = !text;
  }

  async function act(url, body, what) {
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-convoy-dashboard': '1' }, body: JSON.stringify(body || {}), credentials: 'same-origin' });
      const j = await r.json().catch(() => ({}));
      if (!r.ok) notice(`${what}: ${j.error || r.status}`);
      else notice(`${what}: done`, true);
    } catch (e) {
      notice(`${what}: ${e.message}`);
    }
  }

  // ---- sections ----------------------------------------------------------------
  function renderNodes() {
    const body = $('nodes').tBodies[0];
    body.replaceChildren(...view.nodes.map((n) => {
      const acts = el('td', { class: 'act' });
      if (session.may.nodeAvailability) {
        const next = n.availability === 'ACTIVE' ? 'DRAIN' : 'ACTIVE';
        acts.append(el('button', { class: 'action', 'data-action': next.toLowerCase(), on: { click: () => act(`/api/nodes/${encodeURIComponent(n.id)}/availability`, { availability: next }, `${next === 'DRAIN' ? 'drain' : 'activate'} ${n.hostname}`) } }, next === 'DRAIN' ? 'Drain' : 'Activate'));
      }
      return el('tr', { 'data-node': n.hostname },
        el('td', {}, n.hostname, n.leader ? el('span', { class: 'muted' }, ' (leader)') : null),
        el('td', {}, badge(n.state)), el('td', {}, badge(n.availability)), el('td', {}, n.role.toLowerCase()),
        el('td', {}, n.addr),
        el('td', { class: 'num' }, `${cores(n.cpu.total)} / ${cores(n.cpu.reserved)} / ${cores(n.cpu.used)}`),
        el('td', { class: 'num' }, `${bytes(n.memory.total)} / ${bytes(n.memory.reserved)} / ${bytes(n.memory.used)}`),
        acts);
    }));
  }

  function renderServices() {
    // Keep what the operator is typing in a replicas box across redraws.
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.scaleFor : undefined;
    const typed = new Map([...document.querySelectorAll('input[data-scale-for]')].map((i) => [i.dataset.scaleFor, i.value]));
    const body = $('services').tBodies[0];
    const rows = view.services.map((s) => {
      const acts = el('td', { class: 'act' });
      if (session.may.scale && s.mode === 'REPLICATED') {
        const input = el('input', { type: 'number', min: 0, max: 10000, value: typed.has(s.name) ? typed.get(s.name) : String(s.desired), 'data-scale-for': s.name, class: 'action', title: 'replicas' });
        acts.append(input, ' ', el('button', { class: 'action', 'data-action': 'scale', on: { click: () => act(`/api/services/${encodeURIComponent(s.name)}/scale`, { replicas: Number(input.value) }, `scale ${s.name} to ${input.value}`) } }, 'Scale'), ' ');
      }
      if (session.may.rollback) acts.append(el('button', { class: 'action', 'data-action': 'rollback', on: { click: () => act(`/api/services/${encodeURIComponent(s.name)}/rollback`, {}, `rollback ${s.name}`) } }, 'Rollback'), ' ');
      if (session.may.forceUpdate) acts.append(el('button', { class: 'action', 'data-action': 'force-update', on: { click: () => act(`/api/services/${encodeURIComponent(s.name)}/force-update`, {}, `force update of ${s.name}`) } }, 'Force update'));
      const as = s.autoscale ? `${s.autoscale.min}-${s.autoscale.max}${s.autoscale.cpuPercent ? ` cpu ${s.autoscale.cpuPercent}%` : ''}${s.autoscale.memoryPercent ? ` mem ${s.autoscale.memoryPercent}%` : ''}` : '-';
      return el('tr', { 'data-service': s.name },
        el('td', {}, el('a', { class: 'svc', href: `#service/${encodeURIComponent(s.name)}` }, s.name)),
        el('td', {}, s.mode.toLowerCase()),
        el('td', { class: 'num', 'data-replicas': '' }, `${s.running}/${s.desired}`),
        el('td', {}, s.image), el('td', {}, s.ports.join(', ') || '-'),
        el('td', { title: s.update.message }, s.update.state === 'UPDATE_NONE' ? '-' : badge(s.update.state)),
        el('td', {}, as),
        el('td', { class: 'num' }, cores(s.cpu)), el('td', { class: 'num' }, bytes(s.memory)),
        acts);
    });
    // A replicas box being typed in is not replaced: a redraw between the browser's select-all and
    // the typed text made "1" + "3" = "13". Same services in the same order: every cell but the
    // actions is swapped in place, the box (its value, selection and focus) stays.
    const old = [...body.rows];
    if (focused && old.length === rows.length && rows.every((r, k) => old[k].dataset.service === r.dataset.service)) {
      rows.forEach((r, k) => {
        const cells = [...r.cells];
        for (let c = 0; c < cells.length - 1; c++) old[k].replaceChild(cells[c], old[k].cells[c]);
      });
      return;
    }
    body.replaceChildren(...rows);
    if (focused) {
      const i = document.querySelector(`input[data-scale-for="${CSS.escape(focused)}"]`);
      if (i) i.focus();
    }
  }

  function renderColumns() {
    const byNode = new Map(view.nodes.map((n) => [n.id, []]));
    const unassigned = [];
    for (const t of view.tasks) (byNode.get(t.node) || unassigned).push(t);
    const card = (t) => {
      const c = el('div', { class: 'card', 'data-task': t.id, title: t.message || t.state }, el('span', { class: 'state' }, badge(t.state)), el('b', {}, `${t.service}.${t.slot || ''}`), el('br'), el('span', { class: 'muted' }, t.id.slice(0, 12)));
      c.style.setProperty('--svc', color(t.service));
      return c;
    };
    const cols = view.nodes.map((n) => el('div', { class: 'column', 'data-node': n.hostname },
      el('h3', {}, n.hostname, el('small', {}, `${n.role.toLowerCase()} · ${n.state.toLowerCase()} · ${n.availability.toLowerCase()}`)),
      ...byNode.get(n.id).map(card)));
    if (unassigned.length) cols.push(el('div', { class: 'column' }, el('h3', {}, 'not placed', el('small', {}, 'pending or unassigned')), ...unassigned.map(card)));
    if (view.tasksCut) cols.push(el('p', { class: 'muted' }, `${view.tasksCut} more tasks not shown`));
    $('columns').replaceChildren(...cols);
  }

  function describe(e) {
    if (e.type === 'audit') return `${e.who ? `${e.who.role} ${e.who.id}` : ''} ${e.action} ${e.target ? `${e.target.kind} ${e.target.name || e.target.id || ''}` : ''} ${e.result && !e.result.ok ? `refused: ${e.result.message}` : ''}`;
    const parts = [e.type, e.action, e.serviceName || e.nodeId || '', e.taskId ? e.taskId.slice(0, 12) : '', e.state || '', e.message || ''];
    if (e.from !== undefined && e.to !== undefined) parts.push(`${e.from} → ${e.to}`);
    return parts.filter(Boolean).join(' ');
  }
  function addEvent(e) {
    const list = $('events');
    list.prepend(el('li', { 'data-type': e.type || '' }, el('time', {}, new Date(e.time || Date.now()).toLocaleTimeString()), describe(e).slice(0, 500)));
    while (list.children.length > 500) list.lastChild.remove();
  }

  function polyline(svg, points, fmt) {
    const max = Math.max(...points.map((p) => p.v), 1e-9);
    const t0 = points.length ? points[0].t : 0;
    const span = Math.max(points.length ? points[points.length - 1].t - t0 : 1, 1);
    const ns = 'http://www.w3.org/2000/svg';
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', points.map((p) => `${((p.t - t0) / span) * 600},${150 - (p.v / max) * 140}`).join(' '));
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', '4');
    label.setAttribute('y', '12');
    label.textContent = points.length ? `now ${fmt(points[points.length - 1].v)} · max ${fmt(max)}` : 'no samples yet';
    svg.replaceChildren(line, label);
  }
  function renderService() {
    const pick = $('svc-pick');
    if (!selected && view.services.length) selected = view.services[0].name;
    pick.replaceChildren(...view.services.map((s) => el('option', { value: s.name, selected: s.name === selected }, s.name)));
    $('svc-title').textContent = selected ? `Service ${selected}` : 'Service';
    const h = history.get(selected) || [];
    polyline($('chart-cpu'), h.map((p) => ({ t: p.t, v: p.cpu })), cores);
    polyline($('chart-mem'), h.map((p) => ({ t: p.t, v: p.memory })), bytes);
    $('svc-tasks').tBodies[0].replaceChildren(...view.tasks.filter((t) => t.service === selected).map((t) =>
      el('tr', {}, el('td', {}, `${t.service}.${t.slot || ''} ${t.id.slice(0, 12)}`), el('td', {}, hostOf(t.node)), el('td', {}, badge(t.state)), el('td', {}, t.desired.toLowerCase()),
        el('td', { class: 'num' }, t.cpu === null ? '-' : cores(t.cpu)), el('td', { class: 'num' }, t.memory === null ? '-' : bytes(t.memory)), el('td', {}, t.message))));
  }

  function render() {
    renderNodes();
    renderServices();
    renderColumns();
    renderService();
  }

  // ---- logs: asked again every few seconds while the service page is open ---------
  let logsTimer;
  let logsFor = '';
  async function loadLogs() {
    const svc = selected;
    if (!svc) return;
    try {
      const r = await fetch(`/api/services/${encodeURIComponent(svc)}/logs?tail=100`, { credentials: 'same-origin' });
      const j = await r.json();
      if (svc !== selected) return;
      if (!r.ok) {
        $('logs-note').textContent = j.error || String(r.status);
        return;
      }
      const pre = $('logs');
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.replaceChildren(...j.lines.map((l) => el('span', { class: l.stream }, el('span', { class: 'label' }, `${j.tasks[l.taskId] || l.taskId.slice(0, 12)} | `), `${l.line}\n`)));
      if (atEnd || logsFor !== svc) pre.scrollTop = pre.scrollHeight;
      logsFor = svc;
      $('logs-note').textContent = `${j.lines.length} lines${j.unanswered.length ? `; ${j.unanswered.length} tasks without an answer` : ''}`;
    } catch (e) {
      $('logs-note').textContent = e.message;
    }
  }
  function watchLogs(on) {
    clearInterval(logsTimer);
    logsTimer = undefined;
    if (!on) return;
    void loadLogs();
    logsTimer = setInterval(loadLogs, 3000);
  }
  $('logs-refresh').addEventListener('click', () => void loadLogs());

  // ---- navigation ----------------------------------------------------------------
  function route() {
    const [page, arg] = (location.hash.slice(1) || 'overview').split('/');
    const known = ['overview', 'tasks', 'events', 'service'].includes(page) ? page : 'overview';
    if (known === 'service' && arg) selected = decodeURIComponent(arg);
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== `page-${known}`;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === known);
    renderService();
    watchLogs(known === 'service');
  }
  window.addEventListener('hashchange', route);
  $('svc-pick').addEventListener('change', (e) => { location.hash = `service/${encodeURIComponent(e.target.value)}`; });

  // ---- live ----------------------------------------------------------------------
  function onState(v) {
    // Task transitions seen between two states: the live events of tasks (the agents' own go to NATS).
    const before = new Map(view.tasks.map((t) => [t.id, t.state]));
    if (before.size || view.time) {
      for (const t of v.tasks) {
        if (before.get(t.id) !== t.state) addEvent({ type: 'task', action: t.state.toLowerCase(), serviceName: `${t.service}.${t.slot || ''}`, taskId: t.id, message: `${hostOf(t.node)}${t.message ? ` ${t.message}` : ''}`, time: v.time });
      }
    }
    view = v;
    for (const s of v.services) {
      const h = history.get(s.name) || [];
      h.push({ t: v.time, cpu: s.cpu, memory: s.memory });
      if (h.length > HISTORY) h.shift();
      history.set(s.name, h);
    }
    document.body.dataset.updated = String(v.time);
    render();
  }
  function connect() {
    const es = new EventSource('/api/watch');
    es.addEventListener('open', () => { $('live').className = 'on'; $('live').textContent = 'live'; });
    es.addEventListener('state', (m) => onState(JSON.parse(m.data)));
    es.addEventListener('event', (m) => addEvent(JSON.parse(m.data)));
    es.addEventListener('error', (m) => {
      $('live').className = 'off';
      $('live').textContent = 'reconnecting';
      if (m.data) notice(JSON.parse(m.data).error);
    });
  }

  fetch('/api/session', { credentials: 'same-origin' })
    .then((r) => r.json().then((j) => { if (!r.ok) throw new Error(j.error || String(r.status)); return j; }))
    .then((s) => {
      session = s;
      $('who').textContent = `${s.role} ${s.id}`;
      document.body.dataset.role = s.role;
      route();
      connect();
    })
    .catch((e) => notice(`not signed in: ${e.message}`));
})();
