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
  // Engines that compose text without an AI model; always labelled as such.
  const NOT_AI = new Set(['offline', 'scripted']);
  const STATUS_TEXT = {
    creating: 'Creating job…', connecting: 'Connecting to AI…', streaming: 'Generating suggestions…',
    reconnecting: 'Reconnecting…', complete: 'Done.', error: 'Stopped.',
  };
  const RUNNING = new Set(['creating', 'connecting', 'streaming', 'reconnecting']);
  // What a refused stream means, in plain words (the server's own message is shown too).
  const REFUSAL_HINT = {
    403: 'This job belongs to another user.',
    404: 'The job no longer exists: it may have expired.',
    410: 'The job has already finished and its events are no longer available.',
    429: 'Too many streams are open for your account. Close another Feature Planner tab or wait for a run to finish, then try again.',
    503: 'The server cannot reach its job store right now. Try again shortly.',
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $('app'), notice: $('notice'), provider: $('provider'), form: $('planner-form'),
    fields: $('form-fields'), page: $('pageOrComponent'), featureType: $('featureType'),
    priority: $('priorityLevel'), context: $('additionalContext'), count: $('context-count'),
    modelField: $('model-field'), model: $('customModel'), formError: $('form-error'),
    generate: $('generate'), cancel: $('cancel'), run: $('run'),
    status: $('status'), percent: $('percent'), progress: $('progress'), activity: $('activity'),
    live: $('live'), liveContent: $('live-content'), cursor: $('cursor'),
    errorCard: $('error-card'), errorTitle: $('error-title'), errorMessage: $('error-message'),
    errorHint: $('error-hint'), tryAgain: $('try-again'),
    results: $('results'), resultsTitle: $('results-title'), copy: $('copy'), download: $('download'),
    copyStatus: $('copy-status'), metaNotice: $('meta-notice'), cards: $('cards'), meta: $('meta'),
    announcer: $('announcer'),
  };

  // run: incremented per run; stale callbacks compare against it.
  // text: the Text node holding the live text (appended to, never rebuilt).
  // lastId: the id of the last event received (what a resume starts after).
  // result: the `complete` event's data, for copy and download.
  const state = {
    phase: 'idle', config: FALLBACK, run: 0, es: null, streamUrl: null, jobId: null,
    lastInput: null, text: null, lastId: '', result: null,
  };

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

  // The one polite live region. Messages that follow each other quickly (creating →
  // connecting → streaming) collapse into the last one; deltas are never announced.
  let announceTimer = 0;
  function announce(msg) {
    window.clearTimeout(announceTimer);
    el.announcer.textContent = '';
    announceTimer = window.setTimeout(() => { el.announcer.textContent = msg; }, 150);
  }

  const readJson = (res) => res.json().catch(() => null);
  function retryAfterText(res) {
    const h = res.headers.get('Retry-After');
    if (!h) return '';
    let secs = Number(h);
    if (!Number.isFinite(secs)) secs = Math.ceil((Date.parse(h) - Date.now()) / 1000);
    return Number.isFinite(secs) && secs > 0 ? ` Try again in ${secs} second${secs === 1 ? '' : 's'}.` : '';
  }
  function providerName(p) {
    const c = state.config;
    if (p && p === c.provider && c.providerLabel) return c.providerLabel;
    if (p === 'offline') return 'Offline engine (no AI model)';
    if (p === 'scripted') return 'Scripted provider (no AI model)';
    return p || 'unknown';
  }
  const labelOf = (options, value) => {
    const found = (options || []).find((o) => (typeof o === 'string' ? o : o.value) === value);
    return found ? (typeof found === 'string' ? found : found.label || found.value) : value;
  };

  // Move focus only where it would otherwise be lost (a button that is being hidden or
  // disabled, or nowhere), so that someone typing in the form is not interrupted.
  function focusIfLost(target, ...losing) {
    const active = document.activeElement;
    if (!active || active === document.body || losing.includes(active)) target.focus({ preventScroll: true });
  }

  // ── state machine ─────────────────────────────────────────────
  function setPhase(phase, statusText) {
    const changed = phase !== state.phase;
    state.phase = phase;
    el.app.dataset.state = phase;
    const running = RUNNING.has(phase);
    el.generate.disabled = running;
    el.app.setAttribute('aria-busy', String(running));
    show(el.cancel, running);
    show(el.cursor, phase === 'streaming' || phase === 'reconnecting');
    show(el.run, phase !== 'idle');
    el.status.textContent = statusText || STATUS_TEXT[phase] || '';
    if (changed && running) announce(el.status.textContent);
  }

  // On a small screen the progress card starts below the fold: bring it up, once per run.
  function revealRun() {
    if (el.run.getBoundingClientRect().top <= window.innerHeight - 200) return;
    const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.run.scrollIntoView({ block: 'start', behavior: still ? 'auto' : 'smooth' });
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
    el.cards.replaceChildren();
    el.meta.replaceChildren();
    el.copyStatus.textContent = '';
    show(el.metaNotice, false);
    show(el.results, false);
    show(el.errorCard, false);
    delete el.errorCard.dataset.code;
    delete el.errorCard.dataset.status;
    state.result = null;
    state.lastId = '';
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

  // The error card: `title` says what failed, `message` is the server's (or our) words,
  // `hint` what it means or what to do.
  function fail(message, { title = 'The run failed', hint = '', code = '', status = 0 } = {}) {
    closeStream();
    setPhase('error');
    show(el.activity, false);
    el.errorTitle.textContent = title;
    el.errorMessage.textContent = message;
    el.errorHint.textContent = hint;
    show(el.errorHint, Boolean(hint));
    if (code) el.errorCard.dataset.code = code;
    if (status) el.errorCard.dataset.status = String(status);
    show(el.errorCard, true);
    announce(`${title}: ${message}`);
    el.errorCard.focus();
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
    c.featureTypes = list(c.featureTypes, FALLBACK.featureTypes);
    c.priorityLevels = list(c.priorityLevels, FALLBACK.priorityLevels);
    fillSelect(el.featureType, c.featureTypes);
    fillSelect(el.priority, c.priorityLevels);
    const prio = [...el.priority.options].find((o) => o.value === 'medium');
    if (prio) prio.selected = true;
    const models = list(c.models, []);
    fillSelect(el.model, models, true);
    show(el.modelField, models.length > 0);
    el.page.maxLength = c.limits.pageOrComponent;
    el.context.maxLength = c.limits.additionalContext;
    updateCount();
    if (c.provider) {
      el.provider.textContent = `Engine: ${providerName(c.provider)}`;
      el.provider.dataset.kind = NOT_AI.has(c.provider) ? 'no-ai' : 'ai';
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

  function updateCount() {
    const limit = state.config.limits.additionalContext;
    const used = el.context.value.length;
    el.count.textContent = `${used} / ${limit} characters`;
    el.count.dataset.near = String(used >= limit * 0.9);
  }

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
    state.jobId = null;
    const losing = [el.generate, el.tryAgain];
    resetOutput();
    setPhase('creating');
    revealRun();
    focusIfLost(el.cancel, ...losing);
    let res;
    try {
      res = await fetch(`${API}/suggest-feature`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(input),
      });
    } catch {
      if (run === state.run) {
        fail('Could not reach the server.', { title: 'Could not create the job', hint: 'Check your connection and try again.' });
      }
      return;
    }
    const body = await readJson(res);
    if (run !== state.run) {
      // Cancelled while the job was being created: cancel the job we just got.
      if (res.ok && body && body.data && body.data.streamUrl) deleteJob(body.data.streamUrl);
      return;
    }
    if (res.ok && body && body.success && body.data && body.data.streamUrl) {
      state.streamUrl = body.data.streamUrl;
      state.jobId = body.data.jobId || null;
      connect(run, body.data.streamUrl, { retried: false });
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
    fail(message, {
      title: 'Could not create the job',
      hint: res.status === 429 ? retryAfterText(res).trim() : '',
      code: error.code || '',
      status: res.status,
    });
  }

  function deleteJob(url) {
    fetch(url, { method: 'DELETE', credentials: 'same-origin', headers: { Accept: 'application/json' } }).catch(() => {});
  }

  // ── phase 2 ───────────────────────────────────────────────────
  const parse = (event) => { try { return JSON.parse(event.data); } catch { return null; } };

  function connect(run, url, { retried }) {
    if (state.phase !== 'reconnecting') setPhase('connecting');
    // A hand-made reconnection (see `explainClosed`) resumes like EventSource's own.
    const target = state.lastId ? `${url}?lastEventId=${encodeURIComponent(state.lastId)}` : url;
    const es = new EventSource(target);
    state.es = es;
    const live = (handler) => (event) => {
      if (state.es !== es || state.run !== run) return;
      if (event.lastEventId) state.lastId = event.lastEventId;
      handler(event);
    };

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
      state.result = data;
      renderResults(data);
      setProgress(100);
      show(el.activity, false);
      el.live.open = false;
      setPhase('complete');
      const n = Array.isArray(data.suggestions) ? data.suggestions.length : 0;
      announce(`Done: ${n} suggestion${n === 1 ? '' : 's'}.`);
      el.resultsTitle.focus();
    }));

    es.addEventListener('error', live((event) => {
      if (typeof event.data === 'string') {
        // The server's named, terminal `error` event.
        const data = parse(event) || {};
        fail(data.message || 'The run failed.', { code: data.code || '' });
        return;
      }
      // The browser's own connection error. While CONNECTING, EventSource reconnects by
      // itself and sends Last-Event-ID; CLOSED means the server refused it.
      if (es.readyState === EventSource.CONNECTING) {
        setPhase('reconnecting');
        return;
      }
      closeStream();
      explainClosed(run, url, retried);
    }));
  }

  // EventSource hides why it was refused. Ask the same URL once, the same way (cookie,
  // Last-Event-ID), and read the server's JSON refusal; abort at once if it is a stream.
  async function explainClosed(run, url, retried) {
    const controller = new AbortController();
    const headers = { Accept: 'text/event-stream' };
    if (state.lastId) headers['Last-Event-ID'] = state.lastId;
    let res;
    try {
      res = await fetch(url, { credentials: 'same-origin', headers, cache: 'no-store', signal: controller.signal });
    } catch {
      if (run === state.run) {
        fail('Lost the connection to the server.', { title: 'Connection lost', hint: 'Check your connection and try again.' });
      }
      return;
    }
    const type = res.headers.get('Content-Type') || '';
    if (res.status === 200 && type.startsWith('text/event-stream')) {
      controller.abort();
      if (run !== state.run) return;
      // The server accepts the stream now (the refusal was momentary): resume once by hand.
      if (!retried) { setPhase('reconnecting'); connect(run, url, { retried: true }); return; }
      fail('The stream kept closing.', { title: 'Connection lost', hint: 'Try again in a moment.' });
      return;
    }
    const body = type.includes('json') ? await readJson(res) : null;
    if (!type.includes('json')) controller.abort();
    if (run !== state.run) return;
    const error = (body && body.error) || {};
    if (res.status === 401) {
      fail(error.message || 'Not logged in', { title: 'You are no longer logged in', status: 401, code: error.code || '' });
      notLoggedIn();
      return;
    }
    if (res.status === 204) {
      fail('The run has already ended: there is nothing more to receive.', { title: 'The stream has ended', status: 204 });
      return;
    }
    // The job cannot be streamed by us now; do not leave it waiting for nobody.
    if ((res.status === 429 || res.status === 503) && state.streamUrl === url) deleteJob(url);
    const message = error.message || `The server answered HTTP ${res.status}`;
    const hint = [REFUSAL_HINT[res.status] || '', res.status === 429 ? retryAfterText(res).trim() : '']
      .filter(Boolean).join(' ');
    fail(message, {
      title: 'The server refused the stream', hint, code: error.code || '', status: res.status,
    });
  }

  // ── results ───────────────────────────────────────────────────
  function renderResults(data) {
    const suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
    const cards = suggestions.map((s, i) => {
      const card = make('article', { class: 'card suggestion', testid: 'suggestion', 'aria-labelledby': `suggestion-${i + 1}` });
      const title = make('h3', { class: 'suggestion-title', id: `suggestion-${i + 1}` });
      title.append(make('span', { class: 'suggestion-number', 'aria-hidden': 'true' }, `${i + 1}`), make('span', {}, s.title || `Suggestion ${i + 1}`));
      card.appendChild(title);
      if (s.rationale) card.appendChild(make('p', { class: 'rationale' }, s.rationale));
      if (s.description) card.appendChild(make('p', { class: 'description' }, s.description));
      const items = Array.isArray(s.implementationConsiderations) ? s.implementationConsiderations : [];
      if (items.length) {
        card.appendChild(make('h4', {}, 'Implementation considerations'));
        const ul = make('ul');
        for (const item of items) ul.appendChild(make('li', {}, item));
        card.appendChild(ul);
      }
      return card;
    });
    if (!cards.length) cards.push(make('p', { class: 'card empty' }, 'No suggestions were returned.'));
    el.cards.replaceChildren(...cards);
    const canExport = suggestions.length > 0;
    el.copy.disabled = !canExport;

    let notice = data.notice ? String(data.notice) : '';
    if (!notice && NOT_AI.has(data.provider)) notice = `${providerName(data.provider)}: these suggestions were composed without an AI model.`;
    el.metaNotice.textContent = notice;
    show(el.metaNotice, Boolean(notice));

    const usage = data.tokenUsage || {};
    const num = (v) => (typeof v === 'number' ? v.toLocaleString('en') : '0');
    const rows = [
      ['Provider', providerName(data.provider)],
      ['Model', data.model ? String(data.model) : '—'],
      ['Tokens', `${num(usage.inputTokens)} in / ${num(usage.outputTokens)} out`],
      ['Time', typeof data.executionTimeMs === 'number' ? `${(data.executionTimeMs / 1000).toFixed(1)} s` : '—'],
    ];
    if (data.retryCount) rows.push(['Retries', String(data.retryCount)]);
    const dl = make('dl');
    for (const [k, v] of rows) {
      const row = make('div');
      row.append(make('dt', {}, k), make('dd', {}, v));
      dl.appendChild(row);
    }
    el.meta.replaceChildren(dl);
    show(el.results, true);
  }

  function toMarkdown(data, input) {
    const c = state.config;
    const lines = [`# Feature suggestions for ${input.pageOrComponent.trim()}`, ''];
    const facts = [
      labelOf(c.featureTypes, input.featureType),
      `${labelOf(c.priorityLevels, input.priorityLevel)} priority`,
      `${providerName(data.provider)}${data.model ? `, model ${data.model}` : ''}`,
    ];
    lines.push(`_${facts.join(' · ')}_`, '');
    if (data.notice) lines.push(`> ${data.notice}`, '');
    (data.suggestions || []).forEach((s, i) => {
      lines.push(`## ${i + 1}. ${s.title || `Suggestion ${i + 1}`}`, '');
      if (s.rationale) lines.push(`**Why:** ${s.rationale}`, '');
      if (s.description) lines.push(s.description, '');
      const items = Array.isArray(s.implementationConsiderations) ? s.implementationConsiderations : [];
      if (items.length) {
        lines.push('**Implementation considerations**', '');
        for (const item of items) lines.push(`- ${item}`);
        lines.push('');
      }
    });
    return `${lines.join('\n').trimEnd()}\n`;
  }

  function legacyCopy(text) {
    const proxy = make('textarea', { class: 'clipboard-proxy', readonly: '', 'aria-hidden': 'true', tabindex: '-1' });
    proxy.value = text;
    document.body.appendChild(proxy);
    proxy.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    proxy.remove();
    return ok;
  }

  let copyTimer = 0;
  function copyFeedback(msg) {
    el.copyStatus.textContent = msg;
    window.clearTimeout(copyTimer);
    copyTimer = window.setTimeout(() => { el.copyStatus.textContent = ''; }, 4000);
    announce(msg);
  }

  async function copyResults() {
    if (!state.result || !state.lastInput) return;
    const text = toMarkdown(state.result, state.lastInput);
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); ok = true; } catch { ok = false; }
    }
    if (!ok) ok = legacyCopy(text);
    el.copy.focus();
    copyFeedback(ok ? 'Copied as Markdown.' : 'The browser did not allow copying; use Download JSON instead.');
  }

  function downloadResults() {
    if (!state.result) return;
    const payload = { jobId: state.jobId, request: state.lastInput, ...state.result };
    const blob = new Blob([`${JSON.stringify(payload, null, 2)}\n`], { type: 'application/json' });
    const url = URL.createObjectURL(blob);
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    const link = make('a', { href: url, download: `feature-suggestions-${stamp}.json`, class: 'visually-hidden', tabindex: '-1' });
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    copyFeedback('Download started.');
  }

  // ── cancel ────────────────────────────────────────────────────
  function cancel() {
    if (!RUNNING.has(state.phase)) return;
    closeStream();
    state.run += 1; // invalidate the current run's callbacks
    const url = state.streamUrl;
    state.streamUrl = null;
    if (url) deleteJob(url);
    resetOutput();
    setPhase('idle');
    announce('Cancelled.');
    el.page.focus();
  }

  // ── custom agent ──────────────────────────────────────────────
  // The caller's own agent (GET/PUT/DELETE /agent), edited in the settings panel.
  const AGENT_URL = `${API}/agent`;
  const AGENT_FIELDS = ['name', 'role', 'focus', 'systemPrompt', 'temperature', 'tools', 'isActive'];
  const TOOLS = ['Glob', 'Grep', 'Read'];
  const AGENT_DEFAULTS = { name: '', role: '', focus: '', systemPrompt: '', temperature: 0.7, tools: TOOLS, isActive: true };
  const agent = {
    panel: $('agent-panel'), form: $('agent-form'), fields: $('agent-fields'), hint: $('agent-hint'),
    name: $('agent-name'), role: $('agent-role'), focus: $('agent-focus'), systemPrompt: $('agent-prompt'),
    temperature: $('agent-temperature'), tools: $('agent-tools'), isActive: $('agent-active'),
    save: $('agent-save'), remove: $('agent-remove'), status: $('agent-status'),
    stored: false, busy: false,
  };
  const toolBox = (tool) => $(`agent-tool-${tool}`);
  // The control that a field error belongs to (the first tool's checkbox for `tools`).
  const agentControl = (field) => (field === 'tools' ? toolBox(TOOLS[0]) : agent[field]);

  function agentStatus(text, kind = '') {
    agent.status.textContent = text;
    agent.status.dataset.kind = kind;
    if (text) announce(text);
  }

  function clearAgentErrors() {
    for (const field of AGENT_FIELDS) {
      const box = $(`agent-error-${field}`);
      box.textContent = '';
      show(box, false);
      agentControl(field).removeAttribute('aria-invalid');
    }
    agent.tools.removeAttribute('aria-invalid');
  }

  function fillAgent(profile) {
    const p = { ...AGENT_DEFAULTS, ...(profile || {}) };
    for (const field of ['name', 'role', 'focus', 'systemPrompt']) agent[field].value = p[field] == null ? '' : String(p[field]);
    agent.temperature.value = typeof p.temperature === 'number' ? String(p.temperature) : '';
    const tools = Array.isArray(p.tools) ? p.tools : [];
    for (const tool of TOOLS) toolBox(tool).checked = tools.includes(tool);
    agent.isActive.checked = Boolean(p.isActive);
  }

  function setAgentStored(profile) {
    agent.stored = Boolean(profile);
    fillAgent(profile);
    agent.remove.disabled = !agent.stored;
    if (!profile) agent.hint.textContent = 'Using the default agent. Fill in this form and save to plan with your own.';
    else if (profile.isActive) agent.hint.textContent = `Your runs use your custom agent “${profile.name}”.`;
    else agent.hint.textContent = `Your custom agent “${profile.name}” is saved but not active: runs use the default agent.`;
  }

  // While a call is under way the buttons do nothing (they stay enabled: focus is kept).
  function setAgentBusy(busy) {
    agent.busy = busy;
    agent.form.setAttribute('aria-busy', String(busy));
  }

  function readAgent() {
    const raw = agent.temperature.value.trim();
    const temperature = raw === '' ? null : Number(raw);
    return {
      name: agent.name.value,
      role: agent.role.value,
      focus: agent.focus.value,
      systemPrompt: agent.systemPrompt.value,
      // A value the browser cannot read as a number goes as is: the server says what is wrong.
      temperature: raw !== '' && Number.isNaN(temperature) ? raw : temperature,
      tools: TOOLS.filter((tool) => toolBox(tool).checked),
      isActive: agent.isActive.checked,
    };
  }

  // The server's message for a refused call, or ours when it sent none.
  function agentError(res, body, doing) {
    const error = (body && body.error) || {};
    if (res.status === 401) return 'You are not logged in: open the login link that the server printed.';
    return error.message || `Could not ${doing} the agent (HTTP ${res.status}).`;
  }

  function showAgentErrors(fields) {
    let first = null;
    const other = [];
    for (const f of fields) {
      const field = String(f.field || '').split('.')[0];
      if (!AGENT_FIELDS.includes(field)) { other.push(`${f.field}: ${f.message}`); continue; }
      const box = $(`agent-error-${field}`);
      box.textContent = box.textContent ? `${box.textContent} ${f.message}` : String(f.message);
      show(box, true);
      agentControl(field).setAttribute('aria-invalid', 'true');
      if (field === 'tools') agent.tools.setAttribute('aria-invalid', 'true');
      first = first || agentControl(field);
    }
    return { first, other };
  }

  async function agentFetch(method, body) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(AGENT_URL, init);
    return { res, body: res.status === 204 ? null : await readJson(res) };
  }

  async function loadAgent() {
    try {
      const { res, body } = await agentFetch('GET');
      if (res.status === 401) {
        agent.hint.textContent = 'Log in to edit your custom agent.';
        return;
      }
      // `data` is null when the user has no custom agent: runs use the default one.
      if (res.ok && body && body.success) setAgentStored(body.data);
      else {
        setAgentStored(null);
        agentStatus(agentError(res, body, 'load'), 'error');
      }
    } catch {
      setAgentStored(null);
      agentStatus('Could not load your custom agent: the server is unreachable.', 'error');
    }
    agent.fields.disabled = false;
  }

  async function saveAgent() {
    if (agent.busy) return;
    clearAgentErrors();
    agentStatus('');
    setAgentBusy(true);
    try {
      const { res, body } = await agentFetch('PUT', readAgent());
      if (res.ok && body && body.success) {
        setAgentStored(body.data);
        agentStatus('Saved', 'ok');
        return;
      }
      const error = (body && body.error) || {};
      if (res.status === 422 && Array.isArray(error.fields) && error.fields.length) {
        const { first, other } = showAgentErrors(error.fields);
        agentStatus(other.length ? other.join(' ') : 'Not saved: correct the highlighted fields.', 'error');
        if (first) first.focus();
        return;
      }
      agentStatus(agentError(res, body, 'save'), 'error');
    } catch {
      agentStatus('Could not save the agent: the server is unreachable.', 'error');
    } finally {
      setAgentBusy(false);
    }
  }

  async function removeAgent() {
    if (agent.busy || !agent.stored) return;
    clearAgentErrors();
    agentStatus('');
    setAgentBusy(true);
    let removed = false;
    try {
      const { res, body } = await agentFetch('DELETE');
      if (res.status === 204 || res.status === 404) {
        removed = true;
        agentStatus(res.status === 204 ? 'Removed' : agentError(res, body, 'remove'), res.status === 204 ? 'ok' : '');
      } else {
        agentStatus(agentError(res, body, 'remove'), 'error');
      }
    } catch {
      agentStatus('Could not remove the agent: the server is unreachable.', 'error');
    } finally {
      setAgentBusy(false);
    }
    if (removed) {
      const hadFocus = document.activeElement === agent.remove;
      setAgentStored(null);
      // Remove is now disabled: keep focus in the panel.
      if (hadFocus || document.activeElement === document.body) agent.name.focus();
    }
  }

  agent.form.addEventListener('submit', (event) => { event.preventDefault(); saveAgent(); });
  agent.remove.addEventListener('click', removeAgent);
  for (const field of AGENT_FIELDS) {
    const controls = field === 'tools' ? TOOLS.map(toolBox) : [agent[field]];
    for (const control of controls) {
      control.addEventListener('input', () => {
        agentControl(field).removeAttribute('aria-invalid');
        if (field === 'tools') agent.tools.removeAttribute('aria-invalid');
        show($(`agent-error-${field}`), false);
      });
    }
  }

  // ── wiring ────────────────────────────────────────────────────
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (RUNNING.has(state.phase)) return;
    clearFieldErrors();
    if (!el.page.value.trim()) {
      showFieldErrors([{ field: 'pageOrComponent', message: 'Enter a page or component.' }]);
      announce('Please correct the highlighted fields.');
      return;
    }
    start(readForm());
  });
  el.cancel.addEventListener('click', cancel);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && RUNNING.has(state.phase) && !event.defaultPrevented) {
      event.preventDefault();
      cancel();
    }
  });
  el.tryAgain.addEventListener('click', () => { if (state.lastInput) start(state.lastInput); });
  el.copy.addEventListener('click', copyResults);
  el.download.addEventListener('click', downloadResults);
  el.context.addEventListener('input', updateCount);
  for (const name of FIELDS) {
    $(name).addEventListener('input', () => {
      $(name).removeAttribute('aria-invalid');
      show($(`${name}-error`), false);
    });
  }

  setPhase('idle');
  loadConfig();
  loadAgent();
})();
