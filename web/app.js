// spn serve dashboard: polls the read-only API every 2 s and redraws what changed.
// A browser ES module; Chart.js comes from /vendor/chart.js as the global `Chart`, durations
// are formatted by the same code as in the terminal (src/format.ts, served as /format.js).
// Data from run folders is only ever put into the page with textContent, never as HTML.
import { formatDuration } from '/format.js';

const POLL_MS = 2000;
const TRAIN = '#2f6fde';
const TEST = '#e8772e';
const GRID = '#eef0f4';

const $ = (id) => document.getElementById(id);

const state = {
  runs: [],
  selected: null, // run name
  detail: null,
  train: [], // [{step, time_s, loss_bpd, subpixels_per_s, lr}]
  test: [], // [{step, time_s, bpd}]
  nextLine: 0,
  shownFiles: {}, // img id -> url currently shown, so unchanged images are not reloaded
  pinnedFrame: null, // path of the frame shown instead of the animation
  pinnedGrid: '', // '' = latest.png, else a samples/step-*.png path
  timer: null,
  polling: false,
  again: false,
  gen: 0, // bumped on every change of run
};

// ---------- formatting ----------

function fmtNum(v, digits = 3) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function fmtInt(v) {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–';
}

function fmtRate(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  return v.toFixed(0);
}

function fmtDuration(s) {
  return typeof s === 'number' && Number.isFinite(s) && s >= 0 ? formatDuration(s) : '–';
}

function fmtAgo(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = (Date.now() - t) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

function fileUrl(run, info) {
  const rel = info.path.split('/').map(encodeURIComponent).join('/');
  return `/api/runs/${encodeURIComponent(run)}/files/${rel}?v=${info.mtime_ms}-${info.size}`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) {
    let msg = `${res.status}`;
    try {
      msg = (await res.json()).error || msg;
    } catch {
      // not JSON
    }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

// ---------- charts ----------

let charts = null;

function baseOptions(yTitle) {
  return {
    animation: false,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    plugins: {
      legend: { position: 'top', align: 'end', labels: { boxWidth: 12, boxHeight: 2, font: { size: 11 } } },
      decimation: { enabled: true, algorithm: 'lttb', samples: 800 },
      tooltip: {
        callbacks: {
          title: (items) => (items.length ? xLabel(items[0].parsed.x) : ''),
        },
      },
    },
    scales: {
      x: {
        type: 'linear',
        grid: { color: GRID },
        ticks: { maxTicksLimit: 8, font: { size: 11 }, callback: (v) => xTick(v) },
        title: { display: true, text: 'step', font: { size: 11 } },
      },
      y: {
        grid: { color: GRID },
        ticks: { font: { size: 11 } },
        title: { display: true, text: yTitle, font: { size: 11 } },
      },
    },
  };
}

function xMode() {
  return $('x-axis').value;
}

function xTick(v) {
  return xMode() === 'time' ? fmtDuration(v) : Number(v).toLocaleString('en-US');
}

function xLabel(v) {
  return xMode() === 'time' ? `time ${fmtDuration(v)}` : `step ${Number(v).toLocaleString('en-US')}`;
}

function makeCharts() {
  if (typeof Chart === 'undefined') return null;
  const bpd = new Chart($('bpd-chart'), {
    type: 'line',
    data: {
      datasets: [
        { label: 'train', data: [], borderColor: TRAIN, backgroundColor: TRAIN, borderWidth: 2, pointRadius: 0, tension: 0 },
        { label: 'train (raw)', data: [], borderColor: 'rgba(47,111,222,0.22)', backgroundColor: 'rgba(47,111,222,0.22)', borderWidth: 1, pointRadius: 0 },
        { label: 'test', data: [], borderColor: TEST, backgroundColor: TEST, borderWidth: 2, pointRadius: 3, pointHoverRadius: 5 },
      ],
    },
    options: baseOptions('bits / dim'),
  });
  const tput = new Chart($('tput-chart'), {
    type: 'line',
    data: { datasets: [{ label: 'subpixels / s', data: [], borderColor: '#7b5cd6', backgroundColor: 'rgba(123,92,214,0.08)', fill: true, borderWidth: 1.5, pointRadius: 0 }] },
    options: baseOptions('subpixels / s'),
  });
  tput.options.plugins.legend.display = false;
  tput.options.scales.y.ticks.callback = (v) => fmtRate(v);
  const slice = new Chart($('slice-chart'), {
    type: 'bar',
    data: { labels: [], datasets: [{ label: 'bits / dim', data: [], backgroundColor: 'rgba(47,111,222,0.75)', borderRadius: 4 }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: {
        x: { grid: { display: false }, title: { display: true, text: 'slice (generation order)', font: { size: 11 } }, ticks: { font: { size: 11 } } },
        y: { grid: { color: GRID }, title: { display: true, text: 'bits / dim', font: { size: 11 } }, ticks: { font: { size: 11 } } },
      },
    },
  });
  return { bpd, tput, slice };
}

/** Exponential moving average, debiased like TensorBoard's so the start does not sag toward 0. */
function smooth(points, w) {
  if (w <= 0) return points;
  const out = [];
  let acc = 0;
  let n = 0;
  for (const p of points) {
    acc = acc * w + (1 - w) * p.y;
    n += 1;
    out.push({ x: p.x, y: acc / (1 - Math.pow(w, n)) });
  }
  return out;
}

function redrawCurves() {
  if (!charts) return;
  const xKey = xMode() === 'time' ? 'time_s' : 'step';
  const w = Number($('smoothing').value);
  const ok = (r, k) => typeof r[xKey] === 'number' && typeof r[k] === 'number' && Number.isFinite(r[k]);
  const byX = (a, b) => a.x - b.x;
  const train = state.train.filter((r) => ok(r, 'loss_bpd')).map((r) => ({ x: r[xKey], y: r.loss_bpd })).sort(byX);
  const test = state.test.filter((r) => ok(r, 'bpd')).map((r) => ({ x: r[xKey], y: r.bpd })).sort(byX);
  const tput = state.train.filter((r) => ok(r, 'subpixels_per_s')).map((r) => ({ x: r[xKey], y: r.subpixels_per_s })).sort(byX);

  const [smoothSet, rawSet, testSet] = charts.bpd.data.datasets;
  smoothSet.data = smooth(train, w);
  rawSet.data = w > 0 ? train : [];
  rawSet.hidden = w <= 0;
  testSet.data = test;
  charts.bpd.options.scales.x.title.text = xMode() === 'time' ? 'time' : 'step';
  charts.bpd.update('none');

  charts.tput.data.datasets[0].data = tput;
  charts.tput.options.scales.x.title.text = xMode() === 'time' ? 'time' : 'step';
  charts.tput.update('none');
}

// ---------- sidebar ----------

function renderRunList() {
  const list = $('run-list');
  list.replaceChildren();
  $('run-count').textContent = state.runs.length ? `(${state.runs.length})` : '';
  $('no-runs').hidden = state.runs.length > 0;
  for (const r of state.runs) {
    const meta = el('div', { class: 'run-item-meta' });
    const stepText = r.step === null ? '' : r.total_steps ? `${fmtInt(r.step)} / ${fmtInt(r.total_steps)}` : fmtInt(r.step);
    if (stepText) meta.append(el('span', { text: `step ${stepText}` }));
    const bpd = r.eval_bpd ?? r.test_bpd ?? r.train_loss_bpd;
    if (bpd !== null) {
      const which = r.eval_bpd !== null ? 'eval' : r.test_bpd !== null ? 'test' : 'train';
      meta.append(el('span', {}, `${which} `, el('b', { text: fmtNum(bpd) }), ' bpd'));
    }
    meta.append(el('span', { text: fmtAgo(r.updated) }));
    const button = el(
      'button',
      { class: 'run-item' + (r.name === state.selected ? ' selected' : ''), type: 'button', title: r.name },
      el('div', { class: 'run-item-top' }, el('span', { class: 'run-item-name', text: r.name }), badge(r.state)),
      meta,
    );
    button.addEventListener('click', () => select(r.name));
    list.append(el('li', {}, button));
  }
}

function badge(runState) {
  const s = typeof runState === 'string' ? runState : 'unknown';
  return el('span', { class: `badge ${s}`, text: s });
}

// ---------- run view ----------

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  const status = d.status && typeof d.status === 'object' ? d.status : {};
  const config = d.config && typeof d.config === 'object' ? d.config : {};
  const ev = d.eval && typeof d.eval === 'object' ? d.eval : null;

  $('run-name').textContent = d.name;
  const sub = [config.preset, config.stage && `stage ${config.stage}`, typeof config.data === 'string' && config.data, config.device, `updated ${fmtAgo(d.updated)}`];
  $('run-sub').textContent = sub.filter(Boolean).join(' · ');
  $('run-state').replaceWith(Object.assign(badge(status.state), { id: 'run-state' }));

  const step = typeof status.step === 'number' ? status.step : d.metrics.last_train ? d.metrics.last_train.step : null;
  const total = typeof status.total_steps === 'number' ? status.total_steps : null;
  $('progress-bar').style.width = step !== null && total ? `${Math.min(100, (100 * step) / total).toFixed(1)}%` : status.state === 'done' ? '100%' : '0%';
  setStat('stat-step', step === null ? '–' : fmtInt(step), total ? `/ ${fmtInt(total)}` : '');
  $('stat-train').textContent = fmtNum(d.metrics.last_train && d.metrics.last_train.loss_bpd);
  $('stat-test').textContent = fmtNum(d.metrics.last_test && d.metrics.last_test.bpd);
  $('stat-eval').textContent = fmtNum(ev && ev.bpd);
  $('stat-tput').textContent = fmtRate(d.metrics.last_train && d.metrics.last_train.subpixels_per_s);
  $('tput-now').textContent = d.metrics.last_train && typeof d.metrics.last_train.subpixels_per_s === 'number' ? `now ${fmtRate(d.metrics.last_train.subpixels_per_s)} / s` : '';
  const eta = status.state === 'running' && typeof status.eta_s === 'number' ? `ETA ${fmtDuration(status.eta_s)}` : '';
  setStat('stat-time', fmtDuration(status.elapsed_s), eta);

  const msg = $('run-message');
  msg.hidden = typeof status.message !== 'string' || status.message === '';
  msg.textContent = status.message || '';
  msg.className = 'message' + (status.state === 'failed' ? ' bad' : '');
  const problems = $('problems');
  problems.hidden = d.problems.length === 0;
  problems.textContent = d.problems.join('\n');

  renderEval(ev);
  renderSamples(d);
  renderConfig(d.config);
}

/** A stat tile: the main figure, and a smaller note after it (the total, the ETA). */
function setStat(id, main, note) {
  $(id).replaceChildren(main, ...(note ? [el('small', { text: note })] : []));
}

function renderEval(ev) {
  const per = ev && Array.isArray(ev.per_slice_bpd) ? ev.per_slice_bpd : null;
  $('slice-empty').hidden = per !== null;
  $('slice-chart').parentElement.hidden = per === null;
  $('eval-note').textContent = ev ? [ev.split, typeof ev.images === 'number' && `${fmtInt(ev.images)} images`, typeof ev.step === 'number' && `step ${fmtInt(ev.step)}`].filter(Boolean).join(' · ') : '';
  if (!charts || per === null) return;
  const labels = per.map((_, i) => String(i + 1));
  const ds = charts.slice.data;
  if (ds.labels.join() !== labels.join() || ds.datasets[0].data.join() !== per.join()) {
    ds.labels = labels;
    ds.datasets[0].data = per;
    charts.slice.update('none');
  }
}

/** Points an <img> at `url` unless it already shows it, so polling does not flicker. */
function showImage(id, url) {
  const img = $(id);
  img.hidden = url === null;
  $(`${id}-empty`).hidden = url !== null;
  if (url !== null && state.shownFiles[id] !== url) {
    state.shownFiles[id] = url;
    img.src = url;
  }
}

function renderSamples(d) {
  const s = d.samples;
  // Sample grids over time: a picker when there are step-*.png files besides latest.png.
  const pick = $('grid-select');
  pick.hidden = s.grids.length === 0;
  const wanted = [''].concat(s.grids.map((g) => g.path).reverse());
  if (Array.from(pick.options).map((o) => o.value).join('|') !== wanted.join('|')) {
    pick.replaceChildren(...wanted.map((p) => el('option', { value: p, text: p === '' ? 'latest' : `step ${Number(p.match(/(\d+)\.png$/)[1]).toLocaleString('en-US')}` })));
    pick.value = state.pinnedGrid;
  }
  const grid = state.pinnedGrid ? s.grids.find((g) => g.path === state.pinnedGrid) : null;
  const latest = grid || s.latest;
  showImage('latest', latest ? fileUrl(d.name, latest) : null);

  const frame = state.pinnedFrame ? s.frames.find((f) => f.path === state.pinnedFrame) : null;
  if (state.pinnedFrame && !frame) state.pinnedFrame = null;
  const anim = frame || s.animation || (s.frames.length ? s.frames[s.frames.length - 1] : null);
  showImage('animation', anim ? fileUrl(d.name, anim) : null);
  $('play').hidden = !(frame && s.animation);

  const strip = $('frames');
  const key = s.frames.map((f) => fileUrl(d.name, f)).join('|') + '#' + state.pinnedFrame;
  if (strip.dataset.key === key) return;
  strip.dataset.key = key;
  strip.replaceChildren(
    ...s.frames.map((f, i) => {
      const b = el('button', { class: 'frame' + (f.path === state.pinnedFrame ? ' selected' : ''), type: 'button', title: `after slice ${i + 1}` },
        el('img', { src: fileUrl(d.name, f), alt: `after slice ${i + 1}` }),
        el('span', { text: `slice ${i + 1}` }));
      b.addEventListener('click', () => {
        state.pinnedFrame = state.pinnedFrame === f.path ? null : f.path;
        renderSamples(state.detail);
      });
      return b;
    }),
  );
}

/** The top-level scalars of config.json that describe the data (RunConfig in src/train/run.ts). */
const DATA_KEYS = ['data', 'dataBits', 'subsample', 'size', 'crop'];

/**
 * Config as one small table per section: "run" (the other top-level scalars), "data" (DATA_KEYS),
 * then one per nested object ("model", "train"). Null (no size limit, no step budget) shows as –.
 */
function renderConfig(config) {
  const raw = JSON.stringify(config, null, 2) || 'null';
  const box = $('config-tables');
  if (box.dataset.raw === raw) return;
  box.dataset.raw = raw;
  $('config-raw').textContent = raw;
  box.replaceChildren();
  if (!config || typeof config !== 'object') {
    box.append(el('p', { class: 'muted', text: 'No config.json in this run.' }));
    return;
  }
  const sections = new Map([['run', []], ['data', []]]);
  const rowsOf = (name) => {
    if (!sections.has(name)) sections.set(name, []);
    return sections.get(name);
  };
  for (const [k, v] of Object.entries(config)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) rowsOf(k).push(...flatten(v, ''));
    else rowsOf(DATA_KEYS.includes(k) ? 'data' : 'run').push([k, v]);
  }
  for (const [name, rows] of sections) {
    if (!rows.length) continue;
    const table = el('table', { class: 'config-table' }, el('caption', { text: name }));
    for (const [k, v] of rows) {
      const text = v === null || v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v);
      table.append(el('tr', {}, el('td', { text: k }), el('td', { text })));
    }
    box.append(table);
  }
}

function flatten(obj, prefix) {
  const rows = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) rows.push(...flatten(v, key));
    else rows.push([key, v]);
  }
  return rows;
}

// ---------- polling ----------

function setConn(ok, text) {
  $('conn').className = 'conn ' + (ok ? 'live' : 'offline');
  $('conn-text').textContent = text;
}

async function pollMetrics(name, gen) {
  let more = true;
  let changed = false;
  while (more) {
    const page = await getJson(`/api/runs/${encodeURIComponent(name)}/metrics?since=${state.nextLine}`);
    if (state.gen !== gen) return;
    if (page.reset) {
      state.train = [];
      state.test = [];
      state.nextLine = 0;
      changed = true;
      continue;
    }
    for (const r of page.records) {
      if (r.kind === 'train') state.train.push(r);
      else if (r.kind === 'test') state.test.push(r);
    }
    changed = changed || page.records.length > 0;
    state.nextLine = page.next;
    more = page.more;
  }
  if (changed) redrawCurves();
}

/** One round: the run list, then the selected run's detail and new metrics lines. */
async function poll() {
  if (state.polling) {
    state.again = true; // a selection changed mid-poll: go round once more when this one ends
    return;
  }
  state.polling = true;
  try {
    const { runs } = await getJson('/api/runs');
    state.runs = runs;
    if (state.selected === null && runs.length > 0) {
      setSelection(runs[0].name);
      history.replaceState(null, '', `#run=${encodeURIComponent(runs[0].name)}`);
    }
    renderRunList();
    const name = state.selected;
    const gen = state.gen;
    if (name !== null) {
      try {
        const detail = await getJson(`/api/runs/${encodeURIComponent(name)}`);
        if (state.gen !== gen) return;
        state.detail = detail;
        $('empty').hidden = true;
        $('run').hidden = false;
        renderDetail();
        await pollMetrics(name, gen);
      } catch (err) {
        if (err.status !== 404) throw err;
        $('run').hidden = true;
        $('empty').hidden = false;
        $('empty').textContent = `No run named "${name}" in this folder.`;
      }
    }
    setConn(true, `live · ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setConn(false, `offline: ${err.message}`);
  } finally {
    state.polling = false;
    if (state.again) {
      state.again = false;
      void poll();
    }
  }
}

/** Forgets everything about the previous run; the generation number voids its in-flight replies. */
function setSelection(name) {
  if (state.selected === name) return;
  state.gen += 1;
  state.selected = name;
  state.detail = null;
  state.train = [];
  state.test = [];
  state.nextLine = 0;
  state.shownFiles = {};
  state.pinnedFrame = null;
  state.pinnedGrid = '';
  $('frames').dataset.key = '';
  $('grid-select').replaceChildren();
  redrawCurves();
}

function select(name, { replace = false } = {}) {
  setSelection(name);
  const hash = `#run=${encodeURIComponent(name)}`;
  if (location.hash !== hash) {
    if (replace) history.replaceState(null, '', hash);
    else history.pushState(null, '', hash);
  }
  renderRunList();
  void poll();
}

function selectedFromHash() {
  const m = /^#run=(.+)$/.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function start() {
  charts = makeCharts();
  window.spnDashboard = { state, charts };
  $('x-axis').addEventListener('change', redrawCurves);
  $('smoothing').addEventListener('change', redrawCurves);
  $('grid-select').addEventListener('change', (e) => {
    state.pinnedGrid = e.target.value;
    if (state.detail) renderSamples(state.detail);
  });
  $('play').addEventListener('click', () => {
    state.pinnedFrame = null;
    if (state.detail) renderSamples(state.detail);
  });
  $('config-raw-toggle').addEventListener('click', () => {
    const raw = $('config-raw');
    raw.hidden = !raw.hidden;
    $('config-tables').hidden = !raw.hidden;
    $('config-raw-toggle').textContent = raw.hidden ? 'raw JSON' : 'table';
  });
  window.addEventListener('hashchange', () => {
    const name = selectedFromHash();
    if (name !== null && name !== state.selected) select(name, { replace: true });
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void poll();
  });
  const fromHash = selectedFromHash();
  if (fromHash !== null) select(fromHash, { replace: true });
  else void poll();
  state.timer = setInterval(() => {
    if (!document.hidden) void poll();
  }, POLL_MS);
}

start();
