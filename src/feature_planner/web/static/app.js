// Feature Planner page: a small state machine over the two-phase API.
// idle → creating → connecting → streaming (⇄ reconnecting) → complete | error
// A run opened by its URL (/?job=<id>): idle → loading → connecting → … (running) or
// loading → complete | error (finished, shown from the job's JSON status, no stream).
// /?job=<id>&share=<token> is the same, read-only, with the share token instead of a login.
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
  // As the original design words them (three ASCII dots, which the live region leaves out:
  // a screen reader would read them as "dot dot dot").
  const STATUS_TEXT = {
    loading: 'Loading the run...', creating: 'Creating job...', connecting: 'Connecting to AI...', streaming: 'Generating suggestions...',
    reconnecting: 'Reconnecting...', complete: 'Done.', error: 'Stopped.',
  };
  const GENERATE = 'Generate Suggestions';
  const GENERATING = 'Generating...';
  const RUNNING = new Set(['creating', 'connecting', 'streaming', 'reconnecting']);
  // What each phase of a `progress` event is doing, in words.
  const PHASE_TEXT = {
    'reading-docs': 'Reading the docs', exploring: 'Exploring the code',
    drafting: 'Drafting suggestions', verifying: 'Checking the evidence',
  };
  // What a refused stream means, in plain words (the server's own message is shown too).
  const REFUSAL_HINT = {
    403: 'This job belongs to another user.',
    404: 'The job no longer exists: it may have expired.',
    410: 'The job has already finished and its events are no longer available.',
    429: 'Too many streams are open for your account. Close another Feature Planner tab or wait for a run to finish, then try again.',
    503: 'The server cannot reach its job store right now. Try again shortly.',
  };
  // What a refused share link means (the share view has no login to fall back on).
  const SHARE_HINT = {
    401: 'This share link has expired or was revoked: ask for a new one.',
    403: 'This share link does not open this run.',
    404: 'The run no longer exists.',
  };
  // What a run's own refusals mean (the `error` event's or Phase 1's code).
  const BUDGET_TEXT = {
    BUDGET_EXCEEDED: {
      title: 'The run reached its token budget',
      hint: 'It used more tokens than this server allows for one run, and was stopped. Narrow the request (a smaller page or component), or ask the operator to raise FEATURE_PLANNER_MAX_RUN_TOKENS.',
    },
    DAILY_BUDGET_EXCEEDED: {
      title: 'Your daily token budget is used up',
      hint: 'Your runs of the last 24 hours used all the tokens this server allows a user per day.',
    },
  };
  // The follow-ups offered on each card: the button, and what it says to the server.
  const CARD_FOLLOW_UPS = [
    ['More like this', 'more-like-this', (n) => `More suggestions like #${n}, please.`],
    ['Not this', 'not-this', (n) => `Not #${n}: suggest something else instead.`],
    ['Smaller steps', 'smaller-steps', (n) => `Split #${n} into smaller steps.`],
  ];
  const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  // The text and last event id a tab has shown for a job, so that a reload resumes there.
  const PROGRESS_KEY = 'feature-planner:job:';
  const TITLE = document.title;

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $('app'), notice: $('notice'), provider: $('provider'), form: $('planner-form'),
    fields: $('form-fields'), page: $('pageOrComponent'), featureType: $('featureType'),
    priority: $('priorityLevel'), context: $('additionalContext'), count: $('context-count'),
    modelField: $('model-field'), model: $('customModel'), formError: $('form-error'),
    generate: $('generate'), cancel: $('cancel'), run: $('run'),
    status: $('status'), percent: $('percent'), progress: $('progress'), progressFill: $('progress-fill'),
    phase: $('phase'), phaseName: $('phase-name'), ready: $('ready'), activity: $('activity'),
    live: $('live'), liveContent: $('live-content'), cursor: $('cursor'),
    errorCard: $('error-card'), errorTitle: $('error-title'), errorMessage: $('error-message'),
    errorHint: $('error-hint'), tryAgain: $('try-again'),
    results: $('results'), resultsTitle: $('results-title'), copy: $('copy'), download: $('download'),
    copyStatus: $('copy-status'), metaNotice: $('meta-notice'), cards: $('cards'), meta: $('meta'),
    announcer: $('announcer'), share: $('share'), shareBox: $('share-box'), shareUrl: $('share-url'),
    shareCopy: $('share-copy'), shareHint: $('share-hint'), shareNotice: $('share-notice'),
    agentPanel: $('agent-panel'), downloadMenu: $('download-menu'),
    downloadMarkdown: $('download-markdown'), downloadJson: $('download-json'),
    parent: $('parent'), parentLink: $('parent-link'), parentMessage: $('parent-message'),
    followUp: $('follow-up'), followUpMessage: $('follow-up-message'), followUpSend: $('follow-up-send'),
    followUpError: $('follow-up-error'),
  };

  // run: incremented per run; stale callbacks compare against it.
  // text: the Text node holding the live text (appended to, never rebuilt).
  // lastId: the id of the last event received (what a resume starts after).
  // result: the `complete` event's data, for copy and download.
  // final: the job's final event (`complete` or `error`) has been shown.
  // ownJob: this page created the job in this run (it may cancel a job it cannot stream).
  // share: the share token of a read-only view ('' when logged in as usual).
  // cards: the suggestion cards shown, by index ({ data, node }): one per index, ever.
  // pct: what the progress bar shows: the `progress` events' percent, which never goes back.
  const state = {
    phase: 'idle', config: FALLBACK, run: 0, es: null, streamUrl: null, jobId: null,
    lastInput: null, text: null, lastId: '', result: null, final: false, ownJob: false,
    share: '', loggedIn: false, saveTimer: 0, listedRun: 0, sharing: false,
    cards: new Map(), pct: 0, acting: false,
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
  const jobUrl = (id) => `${API}/suggest-feature/${encodeURIComponent(id)}`;
  const pageUrl = (id) => `/?job=${encodeURIComponent(id)}`;
  function readRoute() {
    const params = new URLSearchParams(window.location.search);
    return { job: params.get('job') || '', share: params.get('share') || '' };
  }
  // A job URL with the share token (in the share view) and `extra` as query parameters.
  function withParams(url, extra = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(extra)) if (v) params.set(k, v);
    if (state.share) params.set('token', state.share);
    const query = params.toString();
    return query ? `${url}?${query}` : url;
  }
  const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  function formatTime(ms) {
    const n = Number(ms);
    return Number.isFinite(n) && n > 0 ? TIME.format(new Date(n)) : '';
  }

  // sessionStorage, per job: { lastId, text, done, cards, pct }. `text` is exactly the
  // text of the job's events up to `lastId`, and `cards` ([index, suggestion] pairs) the
  // suggestions they sent, so that resuming after `lastId` adds the rest once.
  function loadProgress(id) {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(PROGRESS_KEY + id) || 'null');
      if (saved && typeof saved.text === 'string' && /^[0-9]+$/.test(String(saved.lastId))) return saved;
    } catch { /* storage off or unreadable: start from the beginning */ }
    return null;
  }
  function saveProgress() {
    window.clearTimeout(state.saveTimer);
    state.saveTimer = 0;
    if (!state.jobId || !state.lastId || !state.text) return;
    const saved = {
      lastId: state.lastId, text: state.text.data, done: state.final,
      cards: [...state.cards].map(([index, card]) => [index, card.data]),
      pct: state.pct,
    };
    try { window.sessionStorage.setItem(PROGRESS_KEY + state.jobId, JSON.stringify(saved)); } catch { /* full or off */ }
  }
  function scheduleSave() {
    if (!state.saveTimer) state.saveTimer = window.setTimeout(saveProgress, 250);
  }
  function forgetProgress(id) {
    try { window.sessionStorage.removeItem(PROGRESS_KEY + id); } catch { /* off */ }
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
    el.generate.textContent = running ? GENERATING : GENERATE;
    el.app.setAttribute('aria-busy', String(running));
    show(el.cancel, running && !state.share);
    show(el.cursor, phase === 'streaming' || phase === 'reconnecting');
    show(el.run, phase !== 'idle');
    el.status.textContent = statusText || STATUS_TEXT[phase] || '';
    if (changed && running) announce(el.status.textContent.replace(/\.\.\.$/, ''));
  }

  // On a small screen the progress card starts below the fold: bring it up, once per run.
  function revealRun() {
    if (el.run.getBoundingClientRect().top <= window.innerHeight - 200) return;
    const still = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    el.run.scrollIntoView({ block: 'start', behavior: still ? 'auto' : 'smooth' });
  }

  // The bar, its percent, and what a screen reader says of it (the phase too, when known).
  function setProgress(pct) {
    const value = Math.max(0, Math.min(100, Math.floor(Number(pct) || 0)));
    state.pct = value;
    el.progress.setAttribute('aria-valuenow', String(value));
    const phase = el.phase.hidden ? '' : el.phaseName.textContent;
    el.progress.setAttribute('aria-valuetext', phase ? `${value}%, ${phase}` : `${value}%`);
    el.progressFill.style.width = `${value}%`;
    el.percent.textContent = `${value}%`;
  }
  // Forward only: a run's bar never goes back.
  const advance = (pct) => setProgress(Math.max(state.pct, Number(pct) || 0));

  // A `progress` event: the phase in words, how many suggestions are ready, the percent.
  function showProgress(data) {
    const phase = PHASE_TEXT[data.phase] || (data.phase ? String(data.phase) : '');
    const ready = Number(data.suggestionsReady) || 0;
    const expected = Number(data.suggestionsExpected) || 0;
    el.phaseName.textContent = phase;
    el.ready.textContent = expected > 0 ? `${ready} of ${expected} suggestion${expected === 1 ? '' : 's'} ready` : '';
    show(el.phase, Boolean(phase || el.ready.textContent));
    // 100 belongs to `complete`: until it comes the bar stops just short.
    advance(Math.min(99, Number(data.percent) || 0));
  }

  function resetOutput() {
    window.clearTimeout(state.saveTimer);
    state.saveTimer = 0;
    el.liveContent.textContent = '';
    state.text = document.createTextNode('');
    el.liveContent.appendChild(state.text);
    show(el.live, true);
    el.live.open = true;
    show(el.share, false);
    show(el.shareBox, false);
    el.shareUrl.value = '';
    el.shareHint.textContent = '';
    el.phaseName.textContent = '';
    el.ready.textContent = '';
    show(el.phase, false);
    setProgress(0);
    el.activity.textContent = '';
    show(el.activity, false);
    el.cards.replaceChildren();
    state.cards = new Map();
    el.meta.replaceChildren();
    show(el.meta, false);
    el.copyStatus.textContent = '';
    show(el.metaNotice, false);
    show(el.results, false);
    show(el.parent, false);
    el.parentMessage.textContent = '';
    show(el.followUp, false);
    el.followUpMessage.value = '';
    followUpError('');
    show(el.downloadMenu, false);
    el.downloadMenu.open = false;
    show(el.errorCard, false);
    delete el.errorCard.dataset.code;
    delete el.errorCard.dataset.status;
    state.result = null;
    state.lastId = '';
    state.final = false;
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
  function fail(message, { title = 'The run failed', hint = '', code = '', status = 0, focus = true } = {}) {
    closeStream();
    setPhase('error');
    show(el.activity, false);
    show(el.phase, false);
    el.errorTitle.textContent = title;
    el.errorMessage.textContent = message;
    el.errorHint.textContent = hint;
    show(el.errorHint, Boolean(hint));
    if (code) el.errorCard.dataset.code = code;
    if (status) el.errorCard.dataset.status = String(status);
    show(el.tryAgain, !state.share && Boolean(state.lastInput));
    show(el.errorCard, true);
    announce(`${title}: ${message}`);
    if (focus) el.errorCard.focus();
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

  // Whether the user is logged in (false only when the server said 401).
  async function loadConfig() {
    try {
      const res = await fetch(`${API}/config`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      const body = await readJson(res);
      if (res.status === 401) { applyConfig({}); notLoggedIn(); return false; }
      if (!res.ok || !body || !body.success) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
      applyConfig(body.data || {});
    } catch (err) {
      applyConfig({});
      el.notice.textContent = `Could not load the server configuration (${err.message}); using defaults.`;
      show(el.notice, true);
    }
    el.fields.disabled = false;
    return true;
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
      attach(run, body.data, input);
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
    const budget = BUDGET_TEXT[error.code];
    fail(message, {
      title: budget ? budget.title : 'Could not create the job',
      hint: [budget ? budget.hint : '', res.status === 429 ? retryAfterText(res).trim() : ''].filter(Boolean).join(' '),
      code: error.code || '',
      status: res.status,
    });
  }

  // A job just created (Phase 1 or a follow-up, `data` its 201 answer): its address, then
  // its stream.
  function attach(run, data, input) {
    state.streamUrl = data.streamUrl;
    state.jobId = data.jobId || null;
    state.ownJob = true;
    if (state.jobId) {
      // The run has an address of its own: reload, Back and a second tab find it there.
      if (readRoute().job !== state.jobId) window.history.pushState(null, '', pageUrl(state.jobId));
      setTitle(input);
      markCurrentRun();
    }
    connect(run, data.streamUrl, { retried: false });
  }

  function deleteJob(url) {
    return fetch(url, { method: 'DELETE', credentials: 'same-origin', headers: { Accept: 'application/json' } }).catch(() => {});
  }

  // ── phase 2 ───────────────────────────────────────────────────
  const parse = (event) => { try { return JSON.parse(event.data); } catch { return null; } };

  function connect(run, url, { retried }) {
    if (state.phase !== 'reconnecting') setPhase('connecting');
    // A hand-made reconnection (see `explainClosed`), or a page that re-attaches to a job it
    // had shown before a reload, resumes like EventSource's own.
    const es = new EventSource(withParams(url, { lastEventId: state.lastId }));
    state.es = es;
    const live = (handler) => (event) => {
      if (state.es !== es || state.run !== run) return;
      if (event.lastEventId) state.lastId = event.lastEventId;
      handler(event);
    };

    es.addEventListener('connected', live(() => {
      setPhase('streaming');
      // The run is under way: the list of runs says so (once per run).
      if (state.listedRun !== run) { state.listedRun = run; refreshRuns(); }
    }));

    es.addEventListener('delta', live((event) => {
      const data = parse(event);
      if (!data) return;
      if (state.phase !== 'streaming') setPhase('streaming');
      if (typeof data.text === 'string') state.text.appendData(data.text);
      scheduleSave();
    }));

    es.addEventListener('activity', live((event) => {
      const data = parse(event);
      if (!data) return;
      const tool = data.tool ? String(data.tool) : '';
      const detail = data.detail ? String(data.detail) : '';
      el.activity.textContent = detail.startsWith(tool) ? detail : `${tool} ${detail}`.trim();
      show(el.activity, Boolean(el.activity.textContent));
    }));

    es.addEventListener('progress', live((event) => {
      const data = parse(event);
      if (!data) return;
      showProgress(data);
      scheduleSave();
    }));

    // Each suggestion as soon as the server has verified it: its card at once.
    es.addEventListener('suggestion', live((event) => {
      const data = parse(event);
      if (!data || !data.suggestion || typeof data.suggestion !== 'object') return;
      if (state.phase !== 'streaming') setPhase('streaming');
      addCard(Number(data.index), data.suggestion);
      scheduleSave();
    }));

    es.addEventListener('complete', live((event) => {
      closeStream();
      const data = parse(event) || {};
      state.result = data;
      state.final = true;
      renderResults(data);
      show(el.phase, false);
      setProgress(100);
      show(el.activity, false);
      el.live.open = false;
      setPhase('complete');
      saveProgress();
      updateShare();
      armActions();
      const n = Array.isArray(data.suggestions) ? data.suggestions.length : 0;
      announce(`Done: ${n} suggestion${n === 1 ? '' : 's'}.`);
      el.resultsTitle.focus();
      refreshRuns();
    }));

    es.addEventListener('error', live((event) => {
      if (typeof event.data === 'string') {
        // The server's named, terminal `error` event.
        const data = parse(event) || {};
        state.final = true;
        saveProgress();
        const budget = BUDGET_TEXT[data.code];
        fail(data.message || 'The run failed.', {
          code: data.code || '', title: budget ? budget.title : undefined, hint: budget ? budget.hint : '',
        });
        refreshRuns();
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
      res = await fetch(withParams(url), { credentials: 'same-origin', headers, cache: 'no-store', signal: controller.signal });
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
    // The job ended while the page was not looking: its JSON status has the outcome.
    if ((res.status === 204 || res.status === 410) && state.jobId && state.streamUrl === url && !retried) {
      openJob(state.jobId, { settled: true });
      return;
    }
    if (res.status === 204) {
      fail('The run has already ended: there is nothing more to receive.', { title: 'The stream has ended', status: 204 });
      return;
    }
    // A job this page just created cannot be streamed by us now; do not leave it waiting for
    // nobody. (One it re-attached to may be watched elsewhere: leave that one alone.)
    if ((res.status === 429 || res.status === 503) && state.streamUrl === url && state.ownJob && !state.share) deleteJob(url);
    const message = error.message || `The server answered HTTP ${res.status}`;
    const hint = [REFUSAL_HINT[res.status] || '', res.status === 429 ? retryAfterText(res).trim() : '']
      .filter(Boolean).join(' ');
    fail(message, {
      title: 'The server refused the stream', hint, code: error.code || '', status: res.status,
    });
  }

  // ── results ───────────────────────────────────────────────────
  // The repository's web address for evidence links ('' when none is configured).
  function repositoryUrl() {
    const url = state.config.repositoryUrl;
    return typeof url === 'string' && /^https?:\/\/\S+$/i.test(url) ? url.replace(/\/+$/, '') : '';
  }
  const lineOf = (v) => (Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : 0);
  // `path:12–14` (`path:12` for one line).
  function evidenceRef(e, dash = '–') {
    const start = lineOf(e.startLine);
    const end = Math.max(start, lineOf(e.endLine));
    if (!start) return String(e.path);
    return end > start ? `${e.path}:${start}${dash}${end}` : `${e.path}:${start}`;
  }
  const sizesOf = (s) => [
    s.effort ? `Effort: ${s.effort}` : '', s.impact ? `Impact: ${s.impact}` : '',
  ].filter(Boolean).join(' · ');

  function evidenceItem(e) {
    const item = make('li', { class: 'evidence-item', testid: 'evidence-item' });
    const ref = evidenceRef(e);
    const base = repositoryUrl();
    const start = lineOf(e.startLine);
    if (base && start) {
      const end = Math.max(start, lineOf(e.endLine));
      // encodeURI keeps `?` and `#`, which would end the path: those are encoded too.
      const path = encodeURI(String(e.path)).replace(/[?#]/g, encodeURIComponent);
      const href = `${base}/${path}#L${start}-L${end}`;
      const link = make('a', {
        class: 'evidence-ref', href, target: '_blank', rel: 'noopener noreferrer', testid: 'evidence-link',
      });
      link.append(make('code', {}, ref), make('span', { class: 'visually-hidden' }, ' (opens in a new tab)'));
      item.appendChild(link);
    } else {
      item.appendChild(make('code', { class: 'evidence-ref', testid: 'evidence-ref' }, ref));
    }
    if (e.quote) {
      const details = make('details', { class: 'evidence-quote', testid: 'evidence-quote' });
      const summary = make('summary', {}, 'Quote');
      summary.appendChild(make('span', { class: 'visually-hidden' }, ` from ${ref}`)); // which one, for a screen reader
      details.append(summary, make('pre', {}, e.quote));
      item.appendChild(details);
    }
    return item;
  }

  function cardFor(i, s) {
    const card = make('article', { class: 'card suggestion suggestion-card', testid: 'suggestion', 'aria-labelledby': `suggestion-${i + 1}` });
    card.dataset.index = String(i);
    // "Suggestion N" heads every card (the original design's label), the title after it.
    const title = make('h3', { class: 'suggestion-title', id: `suggestion-${i + 1}` });
    title.append(make('span', { class: 'suggestion-number', testid: 'suggestion-label' }, `Suggestion ${i + 1}`));
    if (s.title) title.append(make('span', { class: 'visually-hidden' }, ': '), make('span', { class: 'suggestion-name' }, s.title));
    card.appendChild(title);
    const sizes = sizesOf(s);
    if (sizes) card.appendChild(make('p', { class: 'sizes', testid: 'suggestion-sizes' }, sizes));
    if (s.rationale) card.appendChild(make('p', { class: 'rationale' }, s.rationale));
    if (s.description) card.appendChild(make('p', { class: 'description' }, s.description));
    const items = Array.isArray(s.implementationConsiderations) ? s.implementationConsiderations : [];
    if (items.length) {
      card.appendChild(make('h4', {}, 'Implementation considerations'));
      const ul = make('ul');
      for (const item of items) ul.appendChild(make('li', {}, item));
      card.appendChild(ul);
    }
    const evidence = (Array.isArray(s.evidence) ? s.evidence : []).filter((e) => e && typeof e === 'object' && e.path);
    if (evidence.length) {
      card.appendChild(make('h4', {}, 'Evidence'));
      const ul = make('ul', { class: 'evidence', testid: 'evidence' });
      for (const e of evidence) ul.appendChild(evidenceItem(e));
      card.appendChild(ul);
    }
    return card;
  }

  // The card of suggestion `i`, once: a suggestion sent is final, so an index already shown
  // (a resumed stream, then `complete`) is left as it is. Cards stay in index order.
  function addCard(i, s) {
    if (!Number.isInteger(i) || i < 0 || !s || typeof s !== 'object' || state.cards.has(i)) return;
    const node = cardFor(i, s);
    state.cards.set(i, { data: s, node });
    const after = [...el.cards.children].find((c) => Number(c.dataset.index) > i) || null;
    el.cards.insertBefore(node, after);
    if (!state.final) {
      // Streaming: the results appear with their first card; copy and download wait for the end.
      el.copy.disabled = true;
      show(el.downloadMenu, false);
      show(el.results, true);
    }
  }

  function renderResults(data) {
    const suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
    // The cards already shown stay; any not seen yet (a run read from its status) are added.
    suggestions.forEach((s, i) => addCard(i, s));
    if (!state.cards.size) el.cards.replaceChildren(make('p', { class: 'card empty' }, 'No suggestions were returned.'));
    const canExport = suggestions.length > 0;
    el.copy.disabled = !canExport;
    show(el.downloadMenu, Boolean(state.jobId));

    let notice = data.notice ? String(data.notice) : '';
    if (!notice && NOT_AI.has(data.provider)) notice = `${providerName(data.provider)}: these suggestions were composed without an AI model.`;
    el.metaNotice.textContent = notice;
    show(el.metaNotice, Boolean(notice));

    const usage = data.tokenUsage || {};
    const num = (v) => (typeof v === 'number' ? v.toLocaleString('en') : '0');
    const total = (Number(usage.inputTokens) || 0) + (Number(usage.outputTokens) || 0);
    const rows = [
      ['Provider', providerName(data.provider)],
      ['Model', data.model ? String(data.model) : '—'],
      ['Tokens', `${num(total)} (${num(usage.inputTokens)} in / ${num(usage.outputTokens)} out)`, 'meta-tokens'],
    ];
    // A cost only where the provider reported one: never estimated here.
    if (typeof usage.costUsd === 'number' && Number.isFinite(usage.costUsd)) rows.push(['Cost', formatUsd(usage.costUsd), 'meta-cost']);
    rows.push(['Time', typeof data.executionTimeMs === 'number' ? `${(data.executionTimeMs / 1000).toFixed(1)} s` : '—']);
    if (data.retryCount) rows.push(['Retries', String(data.retryCount)]);
    const stats = data.evidenceStats;
    if (stats && typeof stats === 'object') {
      rows.push(['Evidence', `${num(stats.verified)} verified of ${num(stats.cited)} cited${stats.dropped ? `, ${num(stats.dropped)} dropped` : ''}`]);
    }
    const dl = make('dl');
    for (const [k, v, testid] of rows) {
      const row = make('div', testid ? { testid } : {});
      row.append(make('dt', {}, k), make('dd', {}, v));
      dl.appendChild(row);
    }
    el.meta.replaceChildren(dl);
    show(el.meta, true);
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
      const sizes = sizesOf(s);
      if (sizes) lines.push(`_${sizes}_`, '');
      if (s.rationale) lines.push(`**Why:** ${s.rationale}`, '');
      if (s.description) lines.push(s.description, '');
      const items = Array.isArray(s.implementationConsiderations) ? s.implementationConsiderations : [];
      if (items.length) {
        lines.push('**Implementation considerations**', '');
        for (const item of items) lines.push(`- ${item}`);
        lines.push('');
      }
      const evidence = (Array.isArray(s.evidence) ? s.evidence : []).filter((e) => e && e.path);
      if (evidence.length) {
        lines.push('**Evidence**', '');
        for (const e of evidence) {
          lines.push(`- \`${evidenceRef(e, '-')}\``);
          if (e.quote) for (const line of String(e.quote).split('\n')) lines.push(`  > ${line}`);
        }
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

  async function copyText(text) {
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); ok = true; } catch { ok = false; }
    }
    return ok || legacyCopy(text);
  }

  async function copyResults() {
    if (!state.result || !state.lastInput) return;
    const ok = await copyText(toMarkdown(state.result, state.lastInput));
    el.copy.focus();
    copyFeedback(ok ? 'Copied as Markdown.' : 'The browser did not allow copying; use Download instead.');
  }

  // The run as the server exports it (Markdown or JSON), saved as a file. Fetched rather
  // than linked, so that a refusal is said on the page instead of saved as the file.
  async function downloadResults(format) {
    const id = state.jobId;
    if (!id || !state.result) return;
    const button = format === 'json' ? el.downloadJson : el.downloadMarkdown;
    let res;
    let blob = null;
    try {
      res = await fetch(withParams(`${jobUrl(id)}/export`, { format }), {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: format === 'json' ? 'application/json' : 'text/markdown' },
      });
      if (res.ok) blob = await res.blob();
    } catch {
      copyFeedback('Could not download the run: the server is unreachable.');
      return;
    }
    if (id !== state.jobId) return;
    if (!blob) {
      const body = await readJson(res);
      const error = (body && body.error) || {};
      copyFeedback(`Could not download the run: ${error.message || `HTTP ${res.status}`}.`);
      return;
    }
    const url = URL.createObjectURL(blob);
    const link = make('a', { href: url, download: exportName(res, id, format), class: 'visually-hidden', tabindex: '-1' });
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    button.focus();
    copyFeedback(`Download started (${format === 'json' ? 'JSON' : 'Markdown'}).`);
  }

  // The file name the server gave (Content-Disposition), else one of our own.
  function exportName(res, id, format) {
    const header = res.headers.get('Content-Disposition') || '';
    const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
    const plain = /filename="?([^";]+)"?/i.exec(header);
    let name = '';
    try { name = star ? decodeURIComponent(star[1]) : (plain ? plain[1] : ''); } catch { name = ''; }
    name = name.replace(/[\\/]/g, '_').trim();
    return name || `feature-suggestions-${id.slice(0, 8)}.${format === 'json' ? 'json' : 'md'}`;
  }

  function formatUsd(value) {
    const digits = value !== 0 && Math.abs(value) < 0.01 ? 4 : 2;
    return `$${value.toFixed(digits)}`;
  }

  // ── acting on a completed run: follow-ups and issues ─────────────
  // Offered to the run's owner once it has completed (a share view only reads and downloads).
  const canAct = () => !state.share && state.loggedIn && state.phase === 'complete' && Boolean(state.jobId);

  function armActions() {
    const on = canAct();
    show(el.followUp, on);
    if (!on) return;
    for (const [index, card] of state.cards) {
      if (!card.node.querySelector('.card-actions')) card.node.appendChild(cardActions(index));
    }
  }

  function cardActions(i) {
    const n = i + 1;
    const box = make('div', { class: 'card-actions', role: 'group', 'aria-label': `Act on suggestion ${n}`, testid: 'card-actions' });
    for (const [label, testid, message] of CARD_FOLLOW_UPS) {
      const button = make('button', { type: 'button', class: 'follow-up-action', testid, 'aria-describedby': `suggestion-${n}` }, label);
      button.addEventListener('click', () => followUp(message(n), i, button));
      box.appendChild(button);
    }
    if (state.config.githubIssues === true) {
      const issue = make('button', { type: 'button', class: 'issue-create', testid: 'issue-create', 'aria-describedby': `suggestion-${n}` }, 'Create issue');
      const status = make('span', { class: 'issue-status', testid: 'issue-status' });
      issue.addEventListener('click', () => createIssue(i, issue, status));
      box.append(issue, status);
    }
    return box;
  }

  function followUpError(text) {
    el.followUpError.textContent = text;
    show(el.followUpError, Boolean(text));
    if (text) el.followUpMessage.setAttribute('aria-invalid', 'true');
    else el.followUpMessage.removeAttribute('aria-invalid');
  }

  // A follow-up (`index`: about that suggestion): a new job that starts from this one; once
  // created, it is opened and streamed like any run, at its own address.
  async function followUp(message, index, trigger) {
    const parentId = state.jobId;
    if (!canAct() || state.acting) return;
    followUpError('');
    state.acting = true;
    el.results.setAttribute('aria-busy', 'true');
    const body = { message };
    if (Number.isInteger(index)) body.suggestionIndex = index;
    let res;
    let answer;
    try {
      res = await fetch(`${jobUrl(parentId)}/follow-up`, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
      });
      answer = await readJson(res);
    } catch {
      followUpError('Could not ask the follow-up: the server is unreachable.');
      return;
    } finally {
      state.acting = false;
      el.results.removeAttribute('aria-busy');
    }
    if (parentId !== state.jobId) return;
    const data = res.ok && answer && answer.success ? answer.data : null;
    if (data && data.streamUrl) {
      const input = state.lastInput;
      closeStream();
      const run = ++state.run;
      resetOutput();
      state.lastInput = input;
      setPhase('creating');
      showParent(data.parentJobId || parentId, message);
      revealRun();
      focusIfLost(el.cancel, trigger, el.followUpSend, el.followUpMessage);
      if (!el.run.contains(document.activeElement) && document.activeElement !== el.cancel) el.cancel.focus({ preventScroll: true });
      attach(run, data, input);
      return;
    }
    const error = (answer && answer.error) || {};
    if (res.status === 401) { notLoggedIn(); followUpError('You are no longer logged in: open the login link that the server printed.'); return; }
    const fields = Array.isArray(error.fields) ? error.fields.map((f) => f.message).filter(Boolean) : [];
    const budget = BUDGET_TEXT[error.code];
    const parts = [
      fields.length ? fields.join(' ') : (error.message || `The server answered HTTP ${res.status}.`),
      budget ? budget.hint : '',
      res.status === 429 ? retryAfterText(res).trim() : '',
    ];
    followUpError(`Could not ask the follow-up: ${parts.filter(Boolean).join(' ')}`);
    (trigger && trigger.isConnected ? trigger : el.followUpMessage).focus();
  }

  // The run this one follows up on, as a link (and what was asked, when this page knows).
  function showParent(parentId, message = '') {
    const id = typeof parentId === 'string' && JOB_ID.test(parentId) ? parentId : '';
    show(el.parent, Boolean(id) && !state.share);
    if (!id) return;
    el.parentLink.href = pageUrl(id);
    el.parentLink.dataset.jobId = id;
    el.parentMessage.textContent = message ? `: “${message}”` : '';
  }

  // File suggestion `i` as a GitHub issue; the issue's link replaces the button. Filing it
  // again answers the same issue.
  async function createIssue(i, button, status) {
    const id = state.jobId;
    if (!canAct() || button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    status.textContent = 'Creating the issue...';
    status.dataset.kind = '';
    let res;
    let body;
    try {
      res = await fetch(`${jobUrl(id)}/suggestions/${i}/issue`, {
        method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      body = await readJson(res);
    } catch {
      res = null;
    } finally {
      button.removeAttribute('aria-busy');
    }
    if (id !== state.jobId) return;
    const data = res && res.ok && body && body.success ? body.data : null;
    if (data && typeof data.url === 'string' && /^https?:\/\//i.test(data.url)) {
      const link = make('a', { class: 'issue-link', href: data.url, target: '_blank', rel: 'noopener noreferrer', testid: 'issue-link' },
        data.number ? `Issue #${data.number}` : 'The issue');
      link.appendChild(make('span', { class: 'visually-hidden' }, ' (opens in a new tab)'));
      status.textContent = '';
      button.replaceWith(link);
      link.focus();
      announce(res.status === 200 ? `Already filed as issue #${data.number}.` : `Filed as issue #${data.number}.`);
      return;
    }
    const error = (body && body.error) || {};
    let text = 'the server is unreachable.';
    if (res && res.status === 501) text = `issues are not set up on this server (${error.message || 'NOT_CONFIGURED'}).`;
    else if (res && res.status === 502) text = `GitHub refused it: ${error.message || 'no reason given'}.`;
    else if (res) text = `${error.message || `HTTP ${res.status}`}.`;
    status.textContent = `Could not create the issue: ${text}`;
    status.dataset.kind = 'error';
    announce(status.textContent);
  }

  // ── cancel ────────────────────────────────────────────────────
  function cancel() {
    if (!RUNNING.has(state.phase) || state.share) return;
    closeStream();
    state.run += 1; // invalidate the current run's callbacks
    const url = state.streamUrl;
    state.streamUrl = null;
    if (url) deleteJob(url).then(() => refreshRuns());
    if (state.jobId) forgetProgress(state.jobId);
    state.jobId = null;
    // The form is back, as it was; its address is the form's (a cancelled run is in the list).
    if (readRoute().job) window.history.replaceState(null, '', '/');
    markCurrentRun();
    resetOutput();
    setPhase('idle');
    announce('Cancelled.');
    el.page.focus();
  }

  // ── a run opened by its address ───────────────────────────────
  function setTitle(input) {
    const target = input && input.pageOrComponent ? String(input.pageOrComponent).trim() : '';
    document.title = target ? `${target} · ${TITLE}` : TITLE;
  }

  function selectValue(select, value) {
    if (!value) return;
    const v = String(value);
    if (![...select.options].some((o) => o.value === v)) select.appendChild(make('option', { value: v }, v));
    select.value = v;
  }

  // The form shows the run's input (in the share view, read-only).
  function fillForm(input) {
    clearFieldErrors();
    el.page.value = input.pageOrComponent ? String(input.pageOrComponent) : '';
    selectValue(el.featureType, input.featureType);
    selectValue(el.priority, input.priorityLevel);
    el.context.value = input.additionalContext ? String(input.additionalContext) : '';
    if (input.customModel && (state.share || !el.modelField.hidden)) {
      selectValue(el.model, input.customModel);
      show(el.modelField, true);
    } else {
      el.model.value = '';
    }
    updateCount();
    setTitle(input);
  }

  function emptyForm() {
    clearFieldErrors();
    el.page.value = '';
    el.context.value = '';
    if (el.featureType.options.length) el.featureType.selectedIndex = 0;
    const prio = [...el.priority.options].find((o) => o.value === 'medium');
    if (prio) el.priority.value = 'medium';
    el.model.value = '';
    updateCount();
    setTitle(null);
  }

  // `/`: the empty form; any stream the page had open for a run is closed (the run goes on).
  function showForm() {
    if (RUNNING.has(state.phase)) saveProgress(); // what this tab has shown of the run it leaves
    closeStream();
    state.run += 1;
    state.jobId = null;
    state.streamUrl = null;
    state.ownJob = false;
    state.lastInput = null;
    markCurrentRun();
    resetOutput();
    setPhase('idle');
    emptyForm();
  }

  function focusRun() {
    if (state.phase === 'complete') el.resultsTitle.focus();
    else if (state.phase === 'error') el.errorCard.focus();
    else el.run.focus();
  }

  // `/?job=<id>`: the job's JSON status says where it is. A running one is streamed again,
  // from the event this tab last showed (sessionStorage) or from its first; a finished one is
  // shown from its status, with no stream. `settled`: it is known to have ended (the stream
  // said so), do not stream it again. `focus`: the user asked for it here (the list of runs).
  async function openJob(id, { focus = false, settled = false } = {}) {
    if (RUNNING.has(state.phase)) saveProgress(); // what this tab has shown of the run it leaves
    closeStream();
    const run = ++state.run;
    resetOutput();
    state.jobId = id;
    state.streamUrl = jobUrl(id);
    state.ownJob = false;
    state.lastInput = null;
    markCurrentRun();
    if (!JOB_ID.test(id)) {
      fail('This address does not name a run.', { title: 'Could not open the run', focus });
      return;
    }
    setPhase('loading');
    revealRun();
    let res;
    let body;
    try {
      res = await fetch(withParams(jobUrl(id)), {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
      body = await readJson(res);
    } catch {
      if (run === state.run) {
        fail('Could not reach the server.', { title: 'Could not open the run', hint: 'Check your connection and try again.', focus });
      }
      return;
    }
    if (run !== state.run) return;
    const job = res.ok && body && body.success ? body.data : null;
    if (!job || typeof job !== 'object') {
      const error = (body && body.error) || {};
      if (res.status === 401 && !state.share) {
        fail(error.message || 'Not logged in', { title: 'You are not logged in', status: 401, code: error.code || '', focus });
        notLoggedIn();
        return;
      }
      const hints = state.share ? SHARE_HINT : REFUSAL_HINT;
      fail(error.message || `The server answered HTTP ${res.status}`, {
        title: 'Could not open the run', hint: hints[res.status] || '', code: error.code || '', status: res.status, focus,
      });
      return;
    }
    const input = job.input && typeof job.input === 'object' ? job.input : null;
    state.lastInput = input;
    if (input) fillForm(input);
    showParent(job.parentJobId);
    const saved = loadProgress(id);
    if ((job.status === 'pending' || job.status === 'in_progress') && !settled) {
      if (saved && !saved.done) {
        // Resume after the last event this tab showed, with the text it had shown.
        state.text.appendData(saved.text);
        state.lastId = String(saved.lastId);
        for (const pair of Array.isArray(saved.cards) ? saved.cards : []) {
          if (Array.isArray(pair)) addCard(Number(pair[0]), pair[1]);
        }
        setProgress(Math.min(99, Number(saved.pct) || 0));
      }
      connect(run, state.streamUrl, { retried: false });
      if (focus) focusRun();
      return;
    }
    // Finished: the text only if this tab saw the whole of it.
    if (saved && saved.done) state.text.appendData(saved.text);
    show(el.live, Boolean(state.text.data));
    el.live.open = false;
    state.final = true;
    if (job.status === 'completed') {
      state.result = job.result && typeof job.result === 'object' ? job.result : {};
      renderResults(state.result);
      setProgress(100);
      setPhase('complete');
      updateShare();
      armActions();
      if (focus) focusRun();
      return;
    }
    const error = job.error && typeof job.error === 'object' ? job.error : {};
    const cancelled = job.status === 'cancelled';
    fail(error.message || (cancelled ? 'The run was cancelled.' : 'The run ended without a result.'), {
      title: cancelled ? 'The run was cancelled' : 'The run failed', code: error.code || '', focus,
    });
  }

  // A run chosen in the page (the list): a new entry in the history, as a link would.
  function navigate(id, { focus = false } = {}) {
    if (id === state.jobId && state.phase !== 'idle' && state.phase !== 'loading') {
      if (focus) focusRun();
      return;
    }
    if (readRoute().job !== id) window.history.pushState(null, '', pageUrl(id));
    openJob(id, { focus });
  }

  // The address changed (Back, Forward): show what it names.
  function followRoute() {
    const route = readRoute();
    if (route.share !== state.share) { window.location.reload(); return; }
    if (!state.share && !state.loggedIn) return; // not logged in: the notice stays
    if (!route.job) { if (state.jobId || state.phase !== 'idle') showForm(); return; }
    if (route.job !== state.jobId || state.phase === 'idle') openJob(route.job);
  }

  // ── share ─────────────────────────────────────────────────────
  // Offered for a completed run, to its owner: a read-only link anyone may open.
  function updateShare() {
    show(el.share, !state.share && state.loggedIn && state.phase === 'complete' && Boolean(state.jobId));
  }

  async function createShare() {
    const id = state.jobId;
    if (!id || state.sharing) return;
    state.sharing = true;
    el.share.setAttribute('aria-busy', 'true');
    try {
      const res = await fetch(`${jobUrl(id)}/share`, {
        method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      const body = await readJson(res);
      if (id !== state.jobId) return;
      const data = (body && body.success && body.data) || null;
      if (!res.ok || !data || !data.url) {
        const error = (body && body.error) || {};
        copyFeedback(`Could not create a share link: ${error.message || `HTTP ${res.status}`}.`);
        return;
      }
      const url = new URL(String(data.url), window.location.origin).href;
      el.shareUrl.value = url;
      const until = formatTime(data.expiresAt);
      el.shareHint.textContent = `Anyone with this link can view this run, read-only${until ? `, until ${until}` : ''}.`;
      show(el.shareBox, true);
      const ok = await copyText(url);
      el.shareUrl.focus();
      el.shareUrl.select();
      copyFeedback(ok ? 'Share link copied.' : 'Share link created: copy it from the box.');
    } catch {
      copyFeedback('Could not create a share link: the server is unreachable.');
    } finally {
      state.sharing = false;
      el.share.removeAttribute('aria-busy');
    }
  }

  async function copyShareLink() {
    if (!el.shareUrl.value) return;
    const ok = await copyText(el.shareUrl.value);
    el.shareCopy.focus();
    copyFeedback(ok ? 'Share link copied.' : 'The browser did not allow copying; select the link and copy it.');
  }

  // ── recent runs ───────────────────────────────────────────────
  // The user's own runs, newest first (GET /jobs); each opens like its address would.
  const runs = {
    section: $('runs'), title: $('runs-title'), list: $('runs-list'), empty: $('runs-empty'),
    status: $('runs-status'), more: $('runs-more'), cursor: null, seq: 0,
  };
  const RUN_STATE = {
    pending: 'Starting', in_progress: 'Running', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled',
  };
  const ACTIVE = new Set(['pending', 'in_progress']);

  function runsStatus(text) {
    runs.status.textContent = text;
    show(runs.status, Boolean(text));
    if (text) announce(text);
  }

  function markCurrentRun() {
    for (const link of runs.list.querySelectorAll('a.run-link')) {
      if (link.closest('li').dataset.jobId === state.jobId) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function runItem(job) {
    const c = state.config;
    const input = job.input && typeof job.input === 'object' ? job.input : {};
    const id = String(job.jobId || '');
    const status = String(job.status || '');
    const active = ACTIVE.has(status);
    const target = input.pageOrComponent ? String(input.pageOrComponent) : 'Untitled run';
    const when = formatTime(job.createdAt);
    const item = make('li', { class: 'run-item', testid: 'run-item' });
    item.dataset.jobId = id;
    item.dataset.status = status;
    const link = make('a', { class: 'run-link', href: pageUrl(id), testid: 'run-open' });
    const facts = [
      input.featureType ? labelOf(c.featureTypes, input.featureType) : '',
      input.priorityLevel ? `${labelOf(c.priorityLevels, input.priorityLevel)} priority` : '',
    ].filter(Boolean).join(' · ');
    // The state in words; a running one also has a spinner (decoration only).
    const badge = make('span', { class: 'run-state', testid: 'run-state' });
    badge.dataset.state = status;
    if (active) badge.appendChild(make('span', { class: 'spinner', 'aria-hidden': 'true' }));
    badge.appendChild(document.createTextNode(RUN_STATE[status] || status || 'Unknown'));
    const time = make('time', { class: 'run-time', testid: 'run-time' }, when);
    if (when) time.setAttribute('datetime', new Date(Number(job.createdAt)).toISOString());
    // Spaces between the parts, so that the link's name reads as words.
    link.append(
      make('span', { class: 'run-target', testid: 'run-target' }, target), ' ',
      make('span', { class: 'run-facts' }, facts), ' ', badge, ' ', time,
    );
    if (id === state.jobId) link.setAttribute('aria-current', 'page');
    link.addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(id, { focus: true });
    });
    item.appendChild(link);
    if (!active) {
      const remove = make('button', {
        type: 'button', class: 'run-delete', testid: 'run-delete',
        'aria-label': `Delete the run for ${target}${when ? `, ${when}` : ''}`,
      }, 'Delete');
      remove.addEventListener('click', () => deleteRun(id, item));
      item.appendChild(remove);
    }
    return item;
  }

  // The first page again (`more`: the next one, after the last shown). A newer call wins.
  async function loadRuns({ more = false } = {}) {
    if (state.share || !state.loggedIn) return;
    const seq = ++runs.seq;
    const params = new URLSearchParams({ limit: '20' });
    if (more && runs.cursor) params.set('cursor', runs.cursor);
    runs.list.setAttribute('aria-busy', 'true');
    let res;
    let body;
    try {
      res = await fetch(`${API}/jobs?${params}`, {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
      body = await readJson(res);
    } catch {
      if (seq === runs.seq) {
        runs.list.removeAttribute('aria-busy');
        show(runs.section, true);
        runsStatus('Could not load your recent runs: the server is unreachable.');
      }
      return;
    }
    if (seq !== runs.seq) return;
    runs.list.removeAttribute('aria-busy');
    const data = res.ok && body && body.success ? body.data : null;
    if (!data || !Array.isArray(data.jobs)) {
      if (res.status === 401) { show(runs.section, false); return; }
      const error = (body && body.error) || {};
      show(runs.section, true);
      runsStatus(`Could not load your recent runs: ${error.message || `HTTP ${res.status}`}.`);
      return;
    }
    const items = data.jobs.filter((job) => job && job.jobId).map(runItem);
    if (more) runs.list.append(...items); else runs.list.replaceChildren(...items);
    runs.cursor = data.nextCursor ? String(data.nextCursor) : null;
    show(runs.more, Boolean(runs.cursor));
    show(runs.empty, runs.list.children.length === 0);
    show(runs.status, false);
    show(runs.section, true);
    if (more && items.length) items[0].querySelector('a').focus();
  }
  const refreshRuns = () => loadRuns();

  async function deleteRun(id, item) {
    let res;
    try {
      res = await fetch(`${API}/jobs/${encodeURIComponent(id)}`, {
        method: 'DELETE', credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
    } catch {
      runsStatus('Could not delete the run: the server is unreachable.');
      return;
    }
    if (res.status === 204 || res.status === 404) {
      forgetProgress(id);
      const next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      show(runs.empty, runs.list.children.length === 0);
      if (id === state.jobId) {
        window.history.replaceState(null, '', '/');
        showForm();
      }
      (next ? next.querySelector('a') : runs.title).focus();
      runsStatus('');
      announce('Run deleted.');
      return;
    }
    const body = await readJson(res);
    const error = (body && body.error) || {};
    runsStatus(res.status === 409
      ? 'This run is still going: cancel it before deleting it.'
      : `Could not delete the run: ${error.message || `HTTP ${res.status}`}.`);
  }

  // ── the share view ────────────────────────────────────────────
  // Read-only: the run and its result, nothing that acts or needs a login.
  function enterShareView() {
    el.app.dataset.view = 'share';
    applyConfig({});
    el.fields.disabled = true;
    show(el.generate, false);
    show(el.cancel, false);
    show(el.tryAgain, false);
    show(el.agentPanel, false);
    show(runs.section, false);
    show(el.shareNotice, true);
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
    if (RUNNING.has(state.phase) || state.share) return;
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
  el.tryAgain.addEventListener('click', () => { if (state.lastInput && !state.share) start(state.lastInput); });
  el.copy.addEventListener('click', copyResults);
  el.share.addEventListener('click', createShare);
  el.shareCopy.addEventListener('click', copyShareLink);
  runs.more.addEventListener('click', () => loadRuns({ more: true }));
  window.addEventListener('popstate', followRoute);
  // Leaving (reload, another page): keep what this tab has shown, and let go of the stream
  // (the run goes on without it). Back to a page kept in memory: show its address again.
  // (beforeunload comes first, while the page is whole; pagehide also covers the rest.)
  const leave = () => {
    if (RUNNING.has(state.phase)) saveProgress();
    closeStream();
  };
  window.addEventListener('beforeunload', leave);
  window.addEventListener('pagehide', leave);
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && state.jobId) openJob(state.jobId);
  });
  el.downloadMarkdown.addEventListener('click', () => downloadResults('markdown'));
  el.downloadJson.addEventListener('click', () => downloadResults('json'));
  el.followUp.addEventListener('submit', (event) => {
    event.preventDefault();
    const message = el.followUpMessage.value.trim();
    if (!message) {
      followUpError('Write what you would like to know or change, e.g. “Why #2?”.');
      el.followUpMessage.focus();
      return;
    }
    followUp(message, undefined, el.followUpSend);
  });
  el.followUpMessage.addEventListener('input', () => followUpError(''));
  el.parentLink.addEventListener('click', (event) => {
    const id = el.parentLink.dataset.jobId;
    if (!id || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(id, { focus: true });
  });
  el.context.addEventListener('input', updateCount);
  for (const name of FIELDS) {
    $(name).addEventListener('input', () => {
      $(name).removeAttribute('aria-invalid');
      show($(`${name}-error`), false);
    });
  }

  setPhase('idle');
  const route = readRoute();
  if (route.share) {
    // A share link: no login, no calls a share token cannot make (config, agent, runs).
    state.share = route.share;
    enterShareView();
    if (route.job) openJob(route.job);
    else fail('This share link does not name a run.', { title: 'Could not open the run', focus: false });
  } else {
    loadConfig().then((loggedIn) => {
      state.loggedIn = loggedIn;
      if (!loggedIn) return;
      refreshRuns();
      const { job } = readRoute();
      if (job) openJob(job);
    });
    loadAgent();
  }
})();
