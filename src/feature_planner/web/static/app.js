// Feature Planner page: a small state machine over the two-phase API.
// idle → creating → connecting → streaming (⇄ reconnecting) → complete | error
// All model/user text goes through textContent; no innerHTML, no eval (CSP-safe).
'use strict';

(() => {
  const API = '/api/feature-planner';
  const FIELDS = ['pageOrComponent', 'featureType', 'priorityLevel', 'additionalContext', 'customModel'];
  const FALLBACK = {
    provider: '', providerLabel: '', models: [],
    featureTypes: ['enhancement', 'new-capability', 'optimization', 'ui-improvement', 'integration']
      .map((v) => ({ value: v, label: v.replace('-', ' ').replace(/^./, (c) => c.toUpperCase()) })),
    priorityLevels: ['low', 'medium', 'high', 'critical']
      .map((v) => ({ value: v, label: v[0].toUpperCase() + v.slice(1) })),
    limits: { pageOrComponent: 200, additionalContext: 1000 },
  };
  const STATUS_TEXT = {
    creating: 'Creating job…', connecting: 'Connecting to AI…', streaming: 'Generating suggestions…',
    reconnecting: 'Reconnecting…', complete: 'Done.', error: 'Stopped.',
  };
  const RUNNING = new Set(['creating', 'connecting', 'streaming', 'reconnecting']);

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $('app'), notice: $('notice'), provider: $('provider'), form: $('planner-form'),
    fields: $('form-fields'), page: $('pageOrComponent'), featureType: $('featureType'),
    priority: $('priorityLevel'), context: $('additionalContext'), count: $('context-count'),
    modelField: $('model-field'), model: $('customModel'), formError: $('form-error'),
    generate: $('generate'), cancel: $('cancel'), run: $('run'), status: $('status'),
    percent: $('percent'), progress: $('progress'), activity: $('activity'), live: $('live'),
    liveContent: $('live-content'), cursor: $('cursor'), errorCard: $('error-card'),
    errorMessage: $('error-message'), tryAgain: $('try-again'), results: $('results'),
    meta: $('meta'), announcer: $('announcer'),
  };

  // run: incremented per run, stale callbacks compare against it.
  // text: the Text node holding the live text (appended to, never rebuilt).
  const state = { phase: 'idle', config: FALLBACK, run: 0, es: null, streamUrl: null, lastInput: null, text: null };

  // ── helpers ────────────────────────────────────────────────────
  function make(tag, props = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'testid') node.dataset.testid = v; else node.setAttribute(k, v);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  const show = (node, visible) => { node.hidden = !visible; };
  function announce(msg) {
    // Clear then set so that the same message is announced again.
    el.announcer.textContent = '';
    window.setTimeout(() => { el.announcer.textContent = msg; }, 50);
  }
  const readJson = (res) => res.json().catch(() => null);
  function retryAfterText(res) {
    const h = res.headers.get('Retry-After');
    if (!h) return '';
    let secs = Number(h);
    if (!Number.isFinite(secs)) secs = Math.ceil((Date.parse(h) - Date.now()) / 1000);
    return Number.isFinite(secs) && secs > 0 ? ` Try again in ${secs} second${secs === 1 ? '' : 's'}.` : '';
  }
  const providerName = (p) => (p && p === state.config.provider && state.config.providerLabel) || p || 'unknown';

  // ── state machine ─────────────────────────────────────────────
  function setPhase(phase, statusText) {
    const changed = phase !== state.phase;
    state.phase = phase;
    el.app.dataset.state = phase;
    const running = RUNNING.has(phase);
    el.generate.disabled = running;
    show(el.cancel, running);
    show(el.cursor, phase === 'streaming' || phase === 'reconnecting');
    show(el.run, phase !== 'idle');
    el.status.textContent = statusText || STATUS_TEXT[phase] || '';
    if (changed && phase !== 'idle' && phase !== 'error') announce(el.status.textContent);
  }

  const setProgress = (pct) => { el.progress.value = pct; el.percent.textContent = `${pct}%`; };

  function resetOutput() {
    el.liveContent.textContent = '';
    state.text = document.createTextNode('');
    el.liveContent.appendChild(state.text);
    el.live.open = true;
    setProgress(0);
    el.activity.textContent = '';
    show(el.activity, false);
    el.results.replaceChildren();
    show(el.results, false);
    el.meta.replaceChildren();
    show(el.meta, false);
    show(el.errorCard, false);
    delete el.errorCard.dataset.code;
    clearFieldErrors();
  }

  function clearFieldErrors() {
    for (const name of FIELDS) {
      $(`${name}-error`).textContent = '';
      show($(`${name}-error`), false);
      $(name).removeAttribute('aria-invalid');
    }
    el.formError.textContent = '';
    show(el.formError, false);
  }

  const closeStream = () => { if (state.es) { state.es.close(); state.es = null; } };

  function fail(message) {
    closeStream();
    setPhase('error');
    show(el.activity, false);
    el.errorMessage.textContent = message;
    show(el.errorCard, true);
    announce(`Error: ${message}`);
  }

  function notLoggedIn() {
    el.notice.textContent = 'You are not logged in: open the login link that the server printed when it started.';
    show(el.notice, true);
    el.fields.disabled = true;
  }

  // ── config ────────────────────────────────────────────────────
  function fillSelect(select, options, withDefault) {
    select.replaceChildren();
    if (withDefault) select.appendChild(make('option', { value: '' }, 'Server default'));
    for (const o of options) {
      const value = typeof o === 'string' ? o : o.value;
      select.appendChild(make('option', { value }, typeof o === 'string' ? o : (o.label || o.value)));
    }
  }

  function applyConfig(cfg) {
    state.config = { ...FALLBACK, ...cfg, limits: { ...FALLBACK.limits, ...(cfg.limits || {}) } };
    const c = state.config;
    const list = (v, fallback) => (Array.isArray(v) && v.length ? v : fallback);
    fillSelect(el.featureType, list(c.featureTypes, FALLBACK.featureTypes));
    fillSelect(el.priority, list(c.priorityLevels, FALLBACK.priorityLevels));
    const prio = [...el.priority.options].find((o) => o.value === 'medium');
    if (prio) prio.selected = true;
    const models = list(c.models, []);
    fillSelect(el.model, models, true);
    show(el.modelField, models.length > 0);
    el.page.maxLength = c.limits.pageOrComponent;
    el.context.maxLength = c.limits.additionalContext;
    updateCount();
    if (c.providerLabel || c.provider) {
      el.provider.textContent = `Engine: ${c.providerLabel || c.provider}`;
      show(el.provider, true);
    }
  }

  async function loadConfig() {
    try {
      const res = await fetch(`${API}/config`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      const body = await readJson(res);
      if (res.status === 401) { applyConfig({}); notLoggedIn(); return; }
      if (!res.ok || !body || !body.success) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
      applyConfig(body.data || {});
    } catch (err) {
      applyConfig({});
      el.notice.textContent = `Could not load the server configuration (${err.message}); using defaults.`;
      show(el.notice, true);
    }
    el.fields.disabled = false;
  }

  const updateCount = () => {
    el.count.textContent = `${el.context.value.length} / ${state.config.limits.additionalContext}`;
  };

  // ── phase 1 ───────────────────────────────────────────────────
  function readForm() {
    const input = {
      pageOrComponent: el.page.value,
      featureType: el.featureType.value,
      priorityLevel: el.priority.value,
    };
    if (el.context.value.trim()) input.additionalContext = el.context.value;
    if (!el.modelField.hidden && el.model.value) input.customModel = el.model.value;
    return input;
  }

  function showFieldErrors(fields, message) {
    let first = null;
    const other = [];
    for (const f of fields) {
      const box = FIELDS.includes(f.field) ? $(`${f.field}-error`) : null;
      if (!box) { other.push(f.message); continue; }
      box.textContent = box.textContent ? `${box.textContent} ${f.message}` : f.message;
      show(box, true);
      $(f.field).setAttribute('aria-invalid', 'true');
      first = first || $(f.field);
    }
    el.formError.textContent = other.length ? other.join(' ') : (message || 'Please correct the highlighted fields.');
    show(el.formError, true);
    if (first) first.focus();
  }

  async function start(input) {
    closeStream();
    const run = ++state.run;
    state.lastInput = input;
    state.streamUrl = null;
    resetOutput();
    setPhase('creating');
    let res;
    try {
      res = await fetch(`${API}/suggest-feature`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(input),
      });
    } catch {
      if (run === state.run) fail('Could not reach the server. Check your connection and try again.');
      return;
    }
    const body = await readJson(res);
    if (run !== state.run) {
      // Cancelled while the job was being created: cancel the job we just got.
      if (res.ok && body && body.data && body.data.streamUrl) {
        fetch(body.data.streamUrl, { method: 'DELETE', credentials: 'same-origin' }).catch(() => {});
      }
      return;
    }
    if (res.ok && body && body.success && body.data && body.data.streamUrl) {
      state.streamUrl = body.data.streamUrl;
      connect(run, body.data.streamUrl);
      return;
    }
    const error = (body && body.error) || {};
    const message = error.message || `Request failed (HTTP ${res.status}).`;
    if (res.status === 401) { setPhase('idle'); notLoggedIn(); return; }
    if (Array.isArray(error.fields) && error.fields.length) {
      setPhase('idle');
      showFieldErrors(error.fields, message);
      announce('Please correct the highlighted fields.');
      return;
    }
    fail(res.status === 429 ? message + retryAfterText(res) : message);
  }

  // ── phase 2 ───────────────────────────────────────────────────
  const parse = (event) => { try { return JSON.parse(event.data); } catch { return null; } };

  function connect(run, url) {
    setPhase('connecting');
    const es = new EventSource(url);
    state.es = es;
    const live = (handler) => (event) => { if (state.es === es && state.run === run) handler(event); };

    es.addEventListener('connected', live(() => setPhase('streaming')));

    es.addEventListener('delta', live((event) => {
      const data = parse(event);
      if (!data) return;
      if (state.phase !== 'streaming') setPhase('streaming');
      if (typeof data.text === 'string') state.text.appendData(data.text);
      const total = Number(data.totalLength) || 0;
      setProgress(Math.min(95, Math.floor((total / 2000) * 100)));
    }));

    es.addEventListener('activity', live((event) => {
      const data = parse(event);
      if (!data) return;
      const tool = data.tool ? String(data.tool) : '';
      const detail = data.detail ? String(data.detail) : '';
      el.activity.textContent = detail.startsWith(tool) ? detail : `${tool} ${detail}`.trim();
      show(el.activity, Boolean(el.activity.textContent));
    }));

    es.addEventListener('complete', live((event) => {
      closeStream();
      const data = parse(event) || {};
      renderResults(data);
      setProgress(100);
      show(el.activity, false);
      el.live.open = false;
      setPhase('complete');
      const n = Array.isArray(data.suggestions) ? data.suggestions.length : 0;
      announce(`Done: ${n} suggestion${n === 1 ? '' : 's'}.`);
    }));

    es.addEventListener('error', live((event) => {
      if (typeof event.data === 'string') {
        // The server's named, terminal `error` event.
        const data = parse(event) || {};
        fail(data.message || 'The run failed.');
        if (data.code) el.errorCard.dataset.code = data.code;
        return;
      }
      // The browser's own connection error.
      if (es.readyState === EventSource.CONNECTING) {
        setPhase('reconnecting');
      } else {
        fail('The stream was closed by the server.');
      }
    }));
  }

  function renderResults(data) {
    const suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
    const cards = suggestions.map((s, i) => {
      const card = make('article', { class: 'card suggestion', testid: 'suggestion' });
      card.appendChild(make('h2', { class: 'suggestion-title' }, s.title || `Suggestion ${i + 1}`));
      if (s.rationale) card.appendChild(make('p', { class: 'rationale' }, s.rationale));
      if (s.description) card.appendChild(make('p', { class: 'description' }, s.description));
      const items = Array.isArray(s.implementationConsiderations) ? s.implementationConsiderations : [];
      if (items.length) {
        card.appendChild(make('h3', {}, 'Implementation considerations'));
        const ul = make('ul');
        for (const item of items) ul.appendChild(make('li', {}, item));
        card.appendChild(ul);
      }
      return card;
    });
    if (!cards.length) cards.push(make('p', { class: 'card empty' }, 'No suggestions were returned.'));
    el.results.replaceChildren(make('h2', { class: 'results-title' }, 'Suggestions'), ...cards);
    show(el.results, true);

    const usage = data.tokenUsage || {};
    const rows = [
      ['Provider', providerName(data.provider)],
      ['Model', data.model || '—'],
      ['Tokens', `${usage.inputTokens ?? 0} in / ${usage.outputTokens ?? 0} out`],
      ['Time', typeof data.executionTimeMs === 'number' ? `${(data.executionTimeMs / 1000).toFixed(1)} s` : '—'],
    ];
    if (data.retryCount) rows.push(['Retries', String(data.retryCount)]);
    const dl = make('dl');
    for (const [k, v] of rows) {
      const row = make('div');
      row.append(make('dt', {}, k), make('dd', {}, v));
      dl.appendChild(row);
    }
    const parts = [dl];
    let notice = data.notice;
    if (!notice && data.provider === 'offline') notice = 'Offline engine: these suggestions were composed without an AI model.';
    if (notice) parts.push(make('p', { class: 'meta-notice', testid: 'meta-notice' }, notice));
    el.meta.replaceChildren(...parts);
    show(el.meta, true);
  }

  // ── cancel ────────────────────────────────────────────────────
  function cancel() {
    if (!RUNNING.has(state.phase)) return;
    closeStream();
    state.run += 1; // invalidate the current run's callbacks
    const url = state.streamUrl;
    state.streamUrl = null;
    if (url) fetch(url, { method: 'DELETE', credentials: 'same-origin' }).catch(() => {});
    resetOutput();
    setPhase('idle');
    announce('Cancelled.');
    el.page.focus();
  }

  // ── wiring ────────────────────────────────────────────────────
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (RUNNING.has(state.phase)) return;
    clearFieldErrors();
    if (!el.page.value.trim()) {
      showFieldErrors([{ field: 'pageOrComponent', message: 'Enter a page or component.' }]);
      return;
    }
    start(readForm());
  });
  el.cancel.addEventListener('click', cancel);
  el.tryAgain.addEventListener('click', () => { if (state.lastInput) start(state.lastInput); });
  el.context.addEventListener('input', updateCount);
  for (const name of FIELDS) {
    $(name).addEventListener('input', () => {
      $(name).removeAttribute('aria-invalid');
      show($(`${name}-error`), false);
    });
  }

  setPhase('idle');
  loadConfig();
})();
