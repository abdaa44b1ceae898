// keyward's dashboard: polls /dashboard/api/state and draws it. Everything is built with DOM
// calls and textContent (never markup from data), charts and gauges as SVG elements; no request
// leaves keyward's origin.
'use strict';

(() => {
  const POLL_MS = 2000;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  let skew = 0; // keyward's clock minus this browser's
  let polling = null;

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const now = () => Date.now() + skew;

  function span(ms) {
    let s = Math.max(0, Math.round(Math.abs(ms) / 1000));
    if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
    if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${s}s`;
  }

  function relative(at) {
    const ms = Date.parse(at) - now();
    if (Number.isNaN(ms)) return '';
    if (Math.abs(ms) < 1000) return 'just now';
    return ms > 0 ? `in ${span(ms)}` : `${span(ms)} ago`;
  }

  // A text that counts down (or up) to `at` by itself.
  function ticking(at, before = '', after = '') {
    const node = el('span', 'tick');
    node.dataset.at = at;
    node.dataset.before = before;
    node.dataset.after = after;
    node.textContent = before + relative(at) + after;
    return node;
  }

  function tick() {
    for (const node of document.querySelectorAll('.tick')) {
      node.textContent = node.dataset.before + relative(node.dataset.at) + node.dataset.after;
    }
  }

  function compact(n) {
    n = Number(n) || 0;
    if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
    if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
    if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
    return n.toLocaleString('en');
  }

  function clock(at) {
    const date = new Date(at);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString('en-GB');
  }

  // Colours told apart at a glance; a name keeps its colour from chart to chart unless two
  // names of one chart would share it.
  const PALETTE = ['#3b6fd8', '#e0782f', '#2f9e6b', '#c2416b', '#8a5cd1', '#c9a227', '#2aa3b8', '#7a8797', '#d45a4b', '#5b8c2a'];

  function colours(names) {
    const taken = new Map();
    for (const name of names) {
      let hash = 7;
      for (const c of String(name)) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
      let index = hash % PALETTE.length;
      for (let tries = 0; tries < PALETTE.length && [...taken.values()].includes(index); tries++) {
        index = (index + 1) % PALETTE.length;
      }
      taken.set(name, index);
    }
    return (name) => PALETTE[taken.get(name) ?? 0];
  }

  function replace(id, ...children) {
    const node = $(id);
    node.replaceChildren(...children);
    return node;
  }

  function field(list, name, value) {
    if (value === null || value === undefined || value === '') return;
    list.append(el('dt', null, name), el('dd', null, value));
  }

  function profileCard(p) {
    const list = el('dl');
    field(list, 'account', p.account_id);
    field(list, 'plan', p.plan);
    field(list, 'email', p.email);
    field(list, 'source', p.source);
    if (p.access_expires_at) {
      const expired = Date.parse(p.access_expires_at) < now();
      field(list, 'access token', ticking(p.access_expires_at, expired ? 'expired ' : 'expires '));
    }
    if (p.generation > 0) field(list, 'lineage', `generation ${p.generation}`);
    if (p.last_refresh) {
      field(list, 'last refresh', ticking(p.last_refresh, '', ` by ${p.lineage_changed_by || 'unknown'}`));
    }
    if (p.cooldown) {
      field(list, 'cooldown', ticking(p.cooldown.until, 'resting, serves again ', `: ${p.cooldown.reason}`));
    } else {
      field(list, 'cooldown', 'none');
    }
    field(list, 'health', p.health.detail);
    if (p.health.remedy) field(list, 'to fix', p.health.remedy);
    const state = p.health.state;
    const title = el('h3', null, el('span', null, p.profile), el('span', `badge state-${state}`, state));
    const card = el('div', 'card profile', title, list);
    card.dataset.profile = p.profile;
    return card;
  }

  function gauge(profile, name, window, shares) {
    const used = Math.max(0, Math.min(100, Number(window.used_percent) || 0));
    const radius = 44;
    const length = 2 * Math.PI * radius;
    const level = used >= 100 ? 'level full' : used >= 80 ? 'level high' : 'level';
    const picture = svg('svg', { width: 120, height: 120, viewBox: '0 0 120 120', role: 'img' },
      svg('title', {}, `${profile} ${name}: ${used.toFixed(0)}% used`),
      svg('circle', { cx: 60, cy: 60, r: radius, fill: 'none', 'stroke-width': 12, class: 'track' }),
      svg('circle', {
        cx: 60, cy: 60, r: radius, fill: 'none', 'stroke-width': 12, class: level,
        'stroke-dasharray': `${(length * used) / 100} ${length}`, transform: 'rotate(-90 60 60)',
        'stroke-linecap': used > 0 ? 'round' : 'butt',
      }),
      svg('text', { x: 60, y: 67, 'text-anchor': 'middle', class: 'value' }, `${used.toFixed(0)}%`));
    const minutes = window.window_minutes;
    const length_text = !minutes ? '' : minutes % 1440 === 0 ? `${minutes / 1440}d` : minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`;
    const box = el('div', 'gauge', picture,
      el('div', 'name', `${profile} · ${name}${length_text ? ` (${length_text})` : ''}`),
      window.resets_at ? el('div', 'muted', ticking(window.resets_at, 'resets ')) : el('div', 'muted', 'reset unknown'));
    if (shares && shares.length) {
      const text = shares
        .filter((s) => s.share > 0.0005)
        .map((s) => `${s.key || '(no key)'} ${(s.share * 100).toFixed(1)}%`)
        .join(', ');
      if (text) box.append(el('div', 'shares', `by key: ${text}`));
    }
    box.dataset.window = `${profile}/${name}`;
    return box;
  }

  function windows(data) {
    const shares = new Map();
    for (const w of (data.stored && data.stored.windows) || []) shares.set(`${w.profile}/${w.window}`, w.by_key);
    const boxes = [];
    for (const p of data.profiles) {
      for (const [name, window] of Object.entries(p.usage || {})) {
        if (name === 'observed_at' || !window || typeof window !== 'object') continue;
        boxes.push(gauge(p.profile, name, window, shares.get(`${p.profile}/${name}`)));
      }
    }
    if (!boxes.length) boxes.push(el('p', 'muted', 'No login has reported its usage windows yet: they appear with the first answer.'));
    replace('windows', ...boxes);
  }

  // Stacked bars: tokens per bucket, a colour per group.
  function chart(id, series, points, none) {
    if (!series) {
      replace(id, el('p', 'muted', 'The usage ledger is off.'));
      return;
    }
    const totals = new Map();
    const buckets = Array.from({ length: series.buckets }, () => new Map());
    for (const point of points) {
      const group = point.group || none;
      if (point.bucket < 0 || point.bucket >= series.buckets) continue;
      buckets[point.bucket].set(group, (buckets[point.bucket].get(group) || 0) + point.tokens);
      totals.set(group, (totals.get(group) || 0) + point.tokens);
    }
    const groups = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
    const colour = colours(groups);
    const width = 480, height = 170, left = 44, bottom = 18, top = 8;
    const plot = height - bottom - top;
    const max = Math.max(1, ...buckets.map((b) => [...b.values()].reduce((x, y) => x + y, 0)));
    const step = (width - left) / series.buckets;
    const picture = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img' });
    picture.append(svg('line', { x1: left, y1: top + plot, x2: width, y2: top + plot, class: 'axis' }));
    picture.append(svg('text', { x: left - 6, y: top + 8, 'text-anchor': 'end' }, compact(max)));
    picture.append(svg('text', { x: left - 6, y: top + plot, 'text-anchor': 'end' }, '0'));
    const start = Date.parse(series.start);
    const labelEvery = series.buckets <= 24 ? 6 : 4;
    buckets.forEach((bucket, index) => {
      let y = top + plot;
      for (const group of groups) {
        const tokens = bucket.get(group) || 0;
        if (!tokens) continue;
        const h = (tokens / max) * plot;
        y -= h;
        const bar = svg('rect', {
          x: (left + index * step + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, step - 2).toFixed(1),
          height: Math.max(0.5, h).toFixed(1), fill: colour(group), class: 'bar',
        }, svg('title', {}, `${group}: ${compact(tokens)} tokens`));
        bar.dataset.group = group;
        picture.append(bar);
      }
      if (index % labelEvery === 0) {
        const at = new Date(start + index * series.bucket_secs * 1000);
        const label = series.bucket_secs < 86400 && series.buckets <= 24
          ? `${String(at.getHours()).padStart(2, '0')}:00`
          : at.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric' });
        picture.append(svg('text', { x: left + index * step, y: height - 4 }, label));
      }
    });
    const legend = el('div', 'legend');
    for (const group of groups) {
      legend.append(el('span', null,
        svg('svg', { width: 10, height: 10 }, svg('rect', { width: 10, height: 10, rx: 2, fill: colour(group) })),
        `${group} ${compact(totals.get(group))}`));
    }
    if (!groups.length) legend.append(el('span', 'muted', 'no requests in this period'));
    replace(id, picture, legend);
  }

  function sum(groups) {
    const total = { requests: 0, input: 0, cached: 0, output: 0, reasoning: 0, refused: 0 };
    for (const g of groups || []) for (const k of Object.keys(total)) total[k] += g[k] || 0;
    return total;
  }

  function totals(stored) {
    const describe = (label, series) => {
      if (!series) return '';
      const t = sum(series.totals_by_key);
      return `${label}: ${compact(t.requests)} requests, ${compact(t.input)} input tokens (${compact(t.cached)} cached), ${compact(t.output)} output (${compact(t.reasoning)} reasoning)${t.refused ? `, ${t.refused} refused by a key's limit` : ''}`;
    };
    $('totals').textContent = [describe('24 hours', stored.day), describe('7 days', stored.week)].filter(Boolean).join(' · ');
  }

  function requests(rows) {
    const body = $('requests').tBodies[0];
    const lines = (rows || []).map((r) => {
      const model = r.served && r.served !== r.asked ? `${r.asked} → ${r.served}` : r.asked || '';
      const status = `${r.status}${r.refused ? ` (${r.refused})` : ''}`;
      const tokens = `in ${compact(r.input)}${r.cached ? ` (${compact(r.cached)} cached)` : ''} · out ${compact(r.output)}${r.reasoning ? ` (${compact(r.reasoning)} reasoning)` : ''}`;
      const duration = `${r.first_byte_ms !== null && r.first_byte_ms !== undefined ? `${r.first_byte_ms} ms to first byte · ` : ''}${r.total_ms} ms${r.hops ? ` · ${r.hops} hop${r.hops > 1 ? 's' : ''}` : ''}`;
      const row = el('tr', null,
        el('td', null, clock(r.at)), el('td', null, r.key || '—'), el('td', null, r.client || ''),
        el('td', null, model), el('td', null, r.profile || '—'),
        el('td', r.status < 400 ? 'status-ok' : 'status-error', status),
        el('td', 'num', tokens), el('td', 'num', duration));
      return row;
    });
    if (!lines.length) lines.push(el('tr', null, el('td', 'muted', 'No request yet.')));
    body.replaceChildren(...lines);
  }

  function events(stored) {
    const items = [];
    for (const r of stored.refreshes || []) {
      items.push({ at: r.updated_at || r.started_at, profile: r.profile, event: `refresh (${r.trigger}): ${r.state}`, detail: r.detail || '' });
    }
    for (const h of stored.health || []) items.push({ at: h.at, profile: h.profile, event: `health: ${h.health}`, detail: h.detail });
    items.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    const rows = items.slice(0, 30).map((e) => el('tr', null,
      el('td', null, `${clock(e.at)} (${relative(e.at)})`), el('td', null, e.profile), el('td', null, e.event), el('td', null, e.detail)));
    if (!rows.length) rows.push(el('tr', null, el('td', 'muted', 'No refresh yet.')));
    $('events').tBodies[0].replaceChildren(...rows);
  }

  function render(data) {
    skew = Date.parse(data.now) - Date.now();
    $('login').hidden = true;
    $('board').hidden = false;
    $('logout').hidden = !data.keys_required;
    $('viewer').textContent = data.viewer ? `signed in as ${data.viewer}` : '';
    $('version').textContent = `keyward ${data.version}`;
    $('status').textContent = `updated ${clock(data.now)}`;
    replace('profiles', ...data.profiles.map(profileCard));
    windows(data);
    const stored = data.stored || {};
    if (stored.error) {
      $('totals').textContent = stored.error;
    } else {
      totals(stored);
      chart('chart-day-key', stored.day, stored.day ? stored.day.by_key : [], '(no key)');
      chart('chart-day-client', stored.day, stored.day ? stored.day.by_client : [], 'unknown');
      chart('chart-week-key', stored.week, stored.week ? stored.week.by_key : [], '(no key)');
      chart('chart-week-client', stored.week, stored.week ? stored.week.by_client : [], 'unknown');
      requests(stored.requests);
      events(stored);
    }
    document.body.dataset.updated = data.now;
  }

  function showLogin(message) {
    $('board').hidden = true;
    $('logout').hidden = true;
    $('viewer').textContent = '';
    $('login').hidden = false;
    $('status').textContent = 'sign-in needed';
    $('login-message').textContent = message || '';
    $('key').focus();
  }

  async function poll() {
    clearTimeout(polling);
    try {
      const answer = await fetch('/dashboard/api/state', { credentials: 'same-origin', cache: 'no-store' });
      const data = await answer.json();
      if (data.login_required) {
        if ($('login').hidden) showLogin();
        return; // polling resumes after a sign-in
      }
      render(data);
    } catch (error) {
      $('status').textContent = `keyward is not answering (${error.message})`;
    }
    polling = setTimeout(poll, POLL_MS);
  }

  async function post(path, body) {
    const answer = await fetch(path, {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return answer.json();
  }

  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('key');
    const result = await post('/dashboard/api/login', { key: input.value });
    input.value = '';
    if (result.signed_in) {
      $('login-message').textContent = '';
      poll();
    } else {
      $('login-message').textContent = result.message || 'keyward did not accept that key';
    }
  });

  $('logout').addEventListener('click', async () => {
    clearTimeout(polling);
    await post('/dashboard/api/logout', {});
    showLogin('Signed out.');
  });

  setInterval(tick, 1000);
  poll();
})();
