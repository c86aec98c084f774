// consent.js under Node, for tests/demo/test_demo.py: a window with just enough of a
// browser (cookies, storage, events, a fetch that forwards to the live server and keeps its
// cookies) and a fake posthog-js that records its calls. Prints what happened as JSON.
// Usage: node consent_harness.js <server url> <consent.js path> <project token>
'use strict';

const fs = require('fs');
const vm = require('vm');

const [base, source, token] = process.argv.slice(2);
const code = fs.readFileSync(source, 'utf8');
const log = [];
const changes = [];

// The browser's state, shared by the page loads below.
const jar = new Map();
const localStore = storage();
const sessionStore = storage();

function storage() {
  const data = new Map();
  return {
    get length() { return data.size; },
    key: (i) => [...data.keys()][i] ?? null,
    getItem: (key) => (data.has(key) ? data.get(key) : null),
    setItem: (key, value) => data.set(key, String(value)),
    removeItem: (key) => data.delete(key),
    keys: () => [...data.keys()],
  };
}

const cookieHeader = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
const snapshot = () => ({
  cookies: [...jar.keys()].sort(),
  local: localStore.keys().sort(),
  session: sessionStore.keys().sort(),
});

function setCookie(line) {
  const [pair, ...attributes] = line.split(';');
  const at = pair.indexOf('=');
  const name = pair.slice(0, at).trim();
  if (attributes.some((attribute) => /^max-age=0$/i.test(attribute.trim()))) jar.delete(name);
  else jar.set(name, pair.slice(at + 1));
}

async function forward(path, init) {
  const response = await fetch(base + path, {
    method: init.method,
    body: init.body,
    headers: { ...init.headers, Cookie: cookieHeader() },
  });
  response.headers.getSetCookie().forEach(setCookie);
  log.push({
    call: 'fetch',
    method: init.method,
    path,
    headers: init.headers,
    body: init.body ? JSON.parse(init.body) : null,
    status: response.status,
  });
  return response;
}

// posthog-js makes up UUIDv7s: the only ids a browser may claim.
function anonymousId() {
  const id = crypto.randomUUID();
  return id.slice(0, 14) + '7' + id.slice(15);
}

function fakePosthog() {
  const posthog = {
    __loaded: false,
    optedIn: false,
    distinctId: anonymousId(),
    init(projectToken, options) {
      log.push({ call: 'init', token: projectToken, options, ...snapshot() });
      this.__loaded = true;
      return this;
    },
    get_distinct_id() { return this.distinctId; },
    has_opted_in_capturing() { return this.optedIn; },
  };
  const effects = {
    reset() { posthog.distinctId = anonymousId(); posthog.optedIn = false; },
    opt_in_capturing() { posthog.optedIn = true; },
    opt_out_capturing() { posthog.optedIn = false; },
    startSessionRecording() {},
    stopSessionRecording() {},
    set_config() {},
  };
  for (const [name, effect] of Object.entries(effects)) {
    posthog[name] = (...args) => {
      log.push({ call: name, args });
      effect();
    };
  }
  return posthog;
}

/** A fresh page: a new window running consent.js, over the same cookies and storage. */
function loadPage() {
  const listeners = {};
  const window = {
    console,
    setTimeout,
    crypto,
    fetch: forward,
    location: { hostname: 'app.example.test' },
    localStorage: localStore,
    sessionStorage: sessionStore,
    CustomEvent: class {
      constructor(type, init) {
        this.type = type;
        this.detail = init && init.detail;
      }
    },
    addEventListener: (type, fn) => (listeners[type] = listeners[type] || []).push(fn),
    dispatchEvent(event) {
      (listeners[event.type] || []).forEach((fn) => fn(event));
      return true;
    },
    document: {
      readyState: 'complete',
      currentScript: null,
      get cookie() { return cookieHeader(); },
      set cookie(line) { setCookie(line); },
    },
    posthog: fakePosthog(),
  };
  window.window = window;
  window.addEventListener('consentservice:change', (event) => changes.push(event.detail));
  vm.createContext(window);
  vm.runInContext(code, window, { filename: 'consent.js' });
  return window;
}

const step = (name, data) => log.push({ call: 'step', step: name, ...data });

(async () => {
  // Left from an earlier visit whose consent is no longer current, beside the app's own.
  jar.set(`ph_${token}_posthog`, 'stale');
  jar.set('theme', 'dark');
  localStore.setItem(`__ph_opt_in_out_${token}`, '1');
  localStore.setItem('theme', 'dark');

  let page = loadPage();
  const service = page.ConsentService;
  service.configure({ banner: false });
  await service.start();

  step('grant all');
  await service.grant(['analytics', 'session_replay']);
  try {
    await service.grant({ bogus: true });
  } catch (error) {
    step('refused', { message: error.message });
  }

  // What posthog-js writes once capturing is on.
  jar.set(`ph_${token}_posthog`, 'written-after-opt-in');
  sessionStore.setItem(`ph_${token}_window_id`, 'w');
  step('withdraw');
  await service.withdraw();
  step('after withdraw', snapshot());

  step('grant analytics');
  await service.grant({ analytics: true, session_replay: false });
  const regrantedId = page.posthog.distinctId;

  // A page that identify()-ed its own id (a user pk): the server refuses to bind it, so
  // consent.js starts a fresh identity and the decision is recorded all the same.
  page.posthog.distinctId = 'user-1';
  step('own id');
  await service.grant({ analytics: true, session_replay: false });
  const retriedId = page.posthog.distinctId;

  // A returning visitor with a current grant: posthog-js's own stored decision must not
  // override the server's (here a stale refusal).
  localStore.setItem(`__ph_opt_in_out_${token}`, '0');
  step('next page');
  page = loadPage();
  page.ConsentService.configure({ banner: false });
  await page.ConsentService.start();

  process.stdout.write(JSON.stringify({
    log,
    changes,
    state: page.ConsentService.state(),
    regrantedId,
    retriedId,
  }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
