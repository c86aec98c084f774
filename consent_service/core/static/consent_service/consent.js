/*
 * consent-service browser client: the consent banner and posthog-js, driven by the ledger.
 *
 * Classic script (sets window.ConsentService, starts once the DOM is ready):
 *   <script src="/static/consent_service/consent.js" defer></script>
 *     data-banner="off"     no built-in banner: build your own UI on the API below
 *     data-autostart="off"  do nothing until ConsentService.start() is called
 * Bundlers: `import "./consent.js"` for its side effect (CommonJS: `require()` returns the
 * same object), then `ConsentService.start({posthog, banner: false})` with your bundled
 * posthog-js instance. Never call posthog.init() yourself: the options the server returns
 * are what keep posthog-js silent and storage-free until analytics is granted. Nor
 * posthog.identify() with your own ids (user pks, emails): for a logged-in user who granted
 * analytics, this script identifies with the id the server minted (config `identified_id`).
 *
 * API: configure(options), start(options) -> Promise<state>, grant(purposes), reject(),
 * withdraw(), identify({userId, signature}), forgetIdentity(), open(), state(), posthog().
 * Every change is dispatched on window as a "consentservice:change" CustomEvent whose
 * detail is the consent state (as GET /api/v1/consent/). With the banner off, open()
 * dispatches "consentservice:open" instead.
 * Options: banner, autostart, posthog (an instance), posthogOptions (extra init options;
 * the server's options win), apiBase ("/api/v1"), csrfCookie ("csrftoken"; unreadable, the
 * config answer's csrf_token is used).
 * receipt(id) saves the signed receipt of a consent record (by default the latest) as a
 * file; the banner offers it once a decision is on record (README "Consent receipts").
 */
(function (root, factory) {
  const api = factory(root);
  root.ConsentService = api;
  if (typeof module === 'object' && module && module.exports) module.exports = api;
})(typeof window !== 'undefined' ? window : globalThis, function (window) {
  'use strict';

  const document = window.document;
  const settings = {
    banner: true,
    autostart: true,
    posthog: null,
    posthogOptions: {},
    apiBase: '/api/v1',
    csrfCookie: 'csrftoken',
  };
  const DESCRIPTIONS = {
    analytics: 'Statistics about which pages and features are used.',
    session_replay: 'Recordings of how pages are used (together with Analytics). ' +
      'What you type is masked.',
  };
  const COOKIELESS_ID = '$posthog_cookieless'; // posthog-js's id while cookieless
  let config = null; // the last answer of GET analytics/config/
  let posthog = null;
  let started = null;
  let banner = null;
  let focusBeforeBanner = null;

  const script = document && document.currentScript;
  if (script) {
    if (script.dataset.banner === 'off') settings.banner = false;
    if (script.dataset.autostart === 'off') settings.autostart = false;
  }

  function configure(options) {
    Object.assign(settings, options || {});
    return api;
  }

  function start(options) {
    configure(options);
    if (!started) {
      started = refresh().then((state) => {
        if (state.needs_prompt) onDomReady(showBanner);
        return state;
      });
      started.catch(() => { started = null; }); // let a later call try again
    }
    return started;
  }

  async function refresh() {
    const next = await request('GET', '/analytics/config/');
    if (next.enabled && !posthog) {
      try {
        await loadPosthog(next);
      } catch (error) {
        console.warn('consent-service: posthog-js is unavailable', error);
      }
    }
    config = next; // only now: state() promises a loaded posthog(), if there is one
    identifyUser(config);
    publish(config.consent);
    return config.consent;
  }

  /**
   * A logged-in user who granted analytics gets an identified id the server minted (never one
   * the page picks: anyone could claim a guessable id first). posthog-js then links its
   * anonymous id to it with $identify. The init option `bootstrap` does the same at init,
   * but only when posthog-js had no id stored or an anonymous one; this covers the rest (a
   * grant on this page, an instance the host app initialised).
   */
  function identifyUser(cfg) {
    const id = cfg.identified_id;
    if (!posthog || !id || !posthog.has_opted_in_capturing()) return;
    if (posthog.get_distinct_id() !== id) posthog.identify(id);
  }

  async function loadPosthog(cfg) {
    let ph = settings.posthog || window.posthog;
    // PostHog's snippet stub is an array that queues calls until array.js replaces it.
    if (!ph || Array.isArray(ph) || typeof ph.init !== 'function') {
      await loadScript(cfg.api_host + '/static/array.js');
      ph = window.posthog;
    }
    posthog = ph;
    if (ph.__loaded) {
      applyConsent(cfg.consent); // initialised by the host app: bring it in line with the ledger
      return;
    }
    // posthog-js reads its own stored opt-in/out on every call, and that beats the
    // *_by_default options: a decision left from an expired consent would capture (and
    // write cookies) from init on. The ledger decides, so drop what posthog-js kept.
    if (isGranted(cfg.consent, 'analytics')) {
      forEachStore((store) => store.removeItem('__ph_opt_in_out_' + cfg.token));
    } else {
      clearPosthogStorage();
    }
    const options = Object.assign({}, settings.posthogOptions, cfg.options);
    // The page's own bootstrap (feature flags, say) stays; the server's distinctID wins.
    const own = (settings.posthogOptions || {}).bootstrap;
    options.bootstrap = Object.assign({}, own, cfg.options.bootstrap);
    ph.init(cfg.token, options);
  }

  function applyConsent(state) {
    if (!posthog) return;
    if (isGranted(state, 'analytics')) {
      if (!posthog.has_opted_in_capturing()) posthog.opt_in_capturing();
      if (isGranted(state, 'session_replay')) posthog.startSessionRecording();
      else posthog.stopSessionRecording();
      return;
    }
    // posthog-js may have been initialised with analytics granted (defaults off): make "no
    // stored decision" mean opted out again before the stored one is wiped below.
    posthog.set_config({ opt_out_capturing_by_default: true, opt_out_persistence_by_default: true });
    posthog.opt_out_capturing();
    posthog.stopSessionRecording();
    clearPosthogStorage();
  }

  async function grant(purposes) {
    await start();
    const choices = choicesFor(purposes);
    const grantsAnalytics = choices.analytics === true;
    if (grantsAnalytics && posthog && config.reset_identity) {
      // This visitor's old ids were erased and stay refused by the proxy. reset() also wipes
      // the stored opt-in, so it must come before opt_in_capturing(), never after.
      posthog.reset(true);
    }
    const body = {
      purposes: choices,
      policy_version: config.consent.current_policy_version,
      source: 'banner',
    };
    // Bound to the visitor so erasure finds it; without analytics nothing is sent under it.
    // Cookieless (CONSENT_COOKIELESS_ON_REJECT) it holds only a sentinel, nobody's id:
    // opting in gives posthog-js a fresh one, which the proxy binds from its first event.
    const current = grantsAnalytics && posthog ? posthog.get_distinct_id() : null;
    if (current && current !== COOKIELESS_ID) body.distinct_id = current;
    try {
      return await write('/consent/', body);
    } catch (error) {
      if (!body.distinct_id || !isRefusedId(error)) throw error;
      // posthog-js holds an id that is another person's, or one a browser may not claim (a
      // page identify()-ed its own): the proxy would drop all it sends. Start afresh, still
      // before opting in (reset() wipes the stored opt-in), so the decision is not lost.
      posthog.reset(true);
      body.distinct_id = posthog.get_distinct_id();
      return write('/consent/', body);
    }
  }

  /** The signed receipt of one of the visitor's records (default: the latest), as a file. */
  async function receipt(id) {
    await start();
    let receiptId = id;
    if (!receiptId) {
      const latest = (await request('GET', '/consent/history/?page_size=1')).results[0];
      if (!latest) throw new Error('consent-service: no decision on record yet');
      receiptId = latest.hash; // a record's chain hash is its receipt id
    }
    const path = '/consent/receipts/' + encodeURIComponent(receiptId) + '/';
    const response = await window.fetch(settings.apiBase + path, {
      headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store',
    });
    if (!response.ok) {
      const error = new Error(`consent-service: GET ${path} answered ${response.status}`);
      error.status = response.status;
      error.body = await response.json().catch(() => null);
      throw error;
    }
    const file = await response.blob(); // the signed bytes, untouched
    const url = window.URL.createObjectURL(file);
    const name = `consent-receipt-${receiptId.slice(0, 12)}.json`;
    const link = el('a', { href: url, download: name, hidden: true });
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => window.URL.revokeObjectURL(url), 1000);
    return JSON.parse(await file.text());
  }

  function isRefusedId(error) {
    const code = error.body && error.body.code;
    return code === 'distinct_id_taken' || code === 'invalid_distinct_id';
  }

  function reject() {
    return grant([]);
  }

  async function withdraw() {
    await start();
    return write('/consent/withdraw/', { source: 'banner' });
  }

  /**
   * A user of a host app that does not log in through Django: its backend signs the user id
   * (README "Signed identity") and the page passes both here. The server links this browser
   * to that user as a Django login would; the refreshed config then carries the id it minted
   * for the user, and posthog-js identifies with it (never with userId itself).
   */
  async function identify(identity) {
    await start();
    const { userId, signature } = identity || {};
    await request('POST', '/identity/', { user_id: userId, signature });
    return refresh();
  }

  /** The host app's logout: the browser starts afresh, as after a Django logout. */
  async function forgetIdentity() {
    await start();
    await request('DELETE', '/identity/');
    if (posthog) posthog.reset(true);
    const next = await refresh();
    applyConsent(next); // the new visitor has decided nothing: opted out, nothing stored
    return next;
  }

  async function write(path, body) {
    let state;
    try {
      state = await request('POST', path, body);
    } catch (error) {
      if (error.status === 409) await refresh().catch(() => {}); // the policy changed meanwhile
      throw error;
    }
    applyConsent(state);
    hideBanner();
    try {
      return await refresh(); // also learns reset_identity for a later grant
    } catch (error) {
      config.consent = state;
      publish(state);
      return state;
    }
  }

  async function open() {
    if (!settings.banner) {
      window.dispatchEvent(new window.CustomEvent('consentservice:open'));
      return config ? config.consent : null;
    }
    const state = await start();
    onDomReady(showBanner);
    return state;
  }

  function state() {
    return config ? config.consent : null;
  }

  /** Purpose keys (array) or {key: boolean}; every known purpose not granted is refused. */
  function choicesFor(purposes) {
    const known = Object.keys(config.consent.purposes);
    const listed = Array.isArray(purposes) ? purposes : Object.keys(purposes || {});
    const unknown = listed.filter((key) => !known.includes(key));
    if (unknown.length) throw new TypeError('consent-service: unknown purpose ' + unknown.join(', '));
    const wanted = Array.isArray(purposes) ? purposes : listed.filter((key) => purposes[key] === true);
    return Object.fromEntries(known.map((key) => [key, wanted.includes(key)]));
  }

  function isGranted(state, purpose) {
    return Boolean(state && state.purposes[purpose] && state.purposes[purpose].granted);
  }

  function publish(state) {
    window.dispatchEvent(new window.CustomEvent('consentservice:change', { detail: state }));
  }

  // --- HTTP -----------------------------------------------------------------------------

  async function request(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') headers['X-CSRFToken'] = csrfToken();
    if (body) {
      headers['Content-Type'] = 'application/json';
      headers['Idempotency-Key'] = uuid();
      init.body = JSON.stringify(body);
    }
    const response = await window.fetch(settings.apiBase + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(`consent-service: ${method} ${path} answered ${response.status}`);
      error.status = response.status;
      error.body = data;
      throw error;
    }
    return data;
  }

  function uuid() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    // randomUUID needs a secure context: plain-http hosts other than localhost lack it.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join('-');
  }

  // --- Storage --------------------------------------------------------------------------

  function cookieNames() {
    return document.cookie.split(';').map((pair) => pair.split('=')[0].trim()).filter(Boolean);
  }

  // The cookie while the page can read it (Django rotates it at login); else the token the
  // config answer carried, for sites with CSRF_COOKIE_HTTPONLY or CSRF_USE_SESSIONS.
  function csrfToken() {
    return readCookie(settings.csrfCookie) || (config && config.csrf_token) || '';
  }

  function readCookie(name) {
    for (const pair of document.cookie.split(';')) {
      const at = pair.indexOf('=');
      if (pair.slice(0, at).trim() === name) return decodeURIComponent(pair.slice(at + 1).trim());
    }
    return '';
  }

  const isPosthogKey = (key) => key.startsWith('ph_') || key.startsWith('__ph_');

  function clearPosthogStorage() {
    for (const name of cookieNames().filter(isPosthogKey)) {
      // posthog-js puts its cookie on the widest parent domain it may (cross_subdomain_cookie),
      // so expire it on this host and on every parent domain.
      const expired = name + '=; Max-Age=0; path=/';
      const labels = window.location.hostname.split('.');
      document.cookie = expired;
      for (let i = 0; i < labels.length - 1; i++) {
        document.cookie = expired + '; domain=' + labels.slice(i).join('.');
      }
    }
    forEachStore((store) => {
      for (let i = store.length - 1; i >= 0; i--) {
        const key = store.key(i);
        if (key && isPosthogKey(key)) store.removeItem(key);
      }
    });
  }

  function forEachStore(fn) {
    for (const kind of ['localStorage', 'sessionStorage']) {
      try {
        fn(window[kind]);
      } catch (error) {
        // storage disabled or blocked: nothing of ours can be in it either
      }
    }
  }

  // --- DOM ------------------------------------------------------------------------------

  function onDomReady(fn) {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', fn, { once: true });
    } else {
      fn();
    }
  }

  function loadScript(src) {
    return new Promise((resolve, fail) => {
      const tag = document.createElement('script');
      tag.src = src;
      tag.async = true;
      tag.onload = resolve;
      tag.onerror = () => fail(new Error('could not load ' + src));
      document.head.appendChild(tag);
    });
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name.includes('-') || name === 'role') node.setAttribute(name, value);
      else node[name] = value;
    }
    node.append(...[].concat(children ?? []));
    return node;
  }

  function showBanner() {
    if (!settings.banner || !config) return;
    if (!banner) {
      injectStyle();
      focusBeforeBanner = document.activeElement;
      banner = buildBanner(config.consent);
      document.body.appendChild(banner);
    }
    banner.focus();
  }

  function hideBanner() {
    if (!banner) return;
    banner.remove();
    banner = null;
    if (focusBeforeBanner && focusBeforeBanner.isConnected) focusBeforeBanner.focus();
  }

  function buildBanner(current) {
    const keys = Object.keys(current.purposes);
    const boxes = keys.map((key) => el('input', {
      type: 'checkbox',
      id: 'cs-purpose-' + key,
      name: key,
      checked: current.purposes[key].granted, // never pre-ticked without a current grant
      'aria-describedby': 'cs-purpose-' + key + '-help',
    }));
    const status = el('p', { className: 'cs-status', role: 'status' });
    const download = current.decided_at
      ? el('button', { type: 'button', className: 'cs-receipt' }, 'Download receipt')
      : null;
    const choose = el('button', {
      type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cs-choices',
    }, 'Choose');
    const accept = el('button', { type: 'button' }, 'Accept all');
    const refuse = el('button', { type: 'button' }, 'Reject all');
    const form = el('form', { id: 'cs-choices', hidden: true }, [
      el('fieldset', {}, [
        el('legend', {}, 'Purposes'),
        ...keys.map((key, i) => el('div', { className: 'cs-purpose' }, [
          boxes[i],
          el('label', { htmlFor: boxes[i].id }, label(key)),
          el('small', { id: boxes[i].id + '-help' }, DESCRIPTIONS[key] || ''),
        ])),
      ]),
      el('button', { type: 'submit' }, 'Save choices'),
    ]);
    const root = el('div', {
      className: 'cs-banner',
      role: 'dialog',
      'aria-labelledby': 'cs-title',
      'aria-describedby': 'cs-description',
      tabIndex: -1,
    }, [
      el('h2', { id: 'cs-title' }, 'Your privacy choices'),
      el('p', { id: 'cs-description' },
        'We would like to measure how this site is used. Nothing is collected unless you ' +
        'agree, and you can change or withdraw your choice at any time.'),
      el('div', { className: 'cs-actions' }, [accept, refuse, choose]),
      form,
      ...(download ? [download] : []),
      status,
    ]);

    let saving = false;
    const save = (decide) => async (event) => {
      event.preventDefault();
      if (saving) return;
      saving = true;
      status.textContent = 'Saving…';
      try {
        await decide();
      } catch (error) {
        status.textContent = error.status === 409
          ? 'The privacy policy has just changed: please review it and choose again.'
          : 'Your choice could not be saved. Please try again.';
      } finally {
        saving = false;
      }
    };
    accept.addEventListener('click', save(() => grant(keys)));
    refuse.addEventListener('click', save(reject));
    form.addEventListener('submit', save(() => grant(keys.filter((key, i) => boxes[i].checked))));
    choose.addEventListener('click', () => {
      const reveal = form.hidden;
      form.hidden = !reveal;
      choose.setAttribute('aria-expanded', String(reveal));
      if (reveal && boxes.length) boxes[0].focus();
    });
    if (download) {
      download.addEventListener('click', () => receipt().catch(() => {
        status.textContent = 'The receipt could not be downloaded. Please try again.';
      }));
    }
    root.addEventListener('keydown', (event) => {
      // Escape is never a decision: it only closes a banner reopened over a current one.
      if (event.key === 'Escape' && !config.consent.needs_prompt) hideBanner();
    });
    return root;
  }

  function label(key) {
    const words = key.replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function injectStyle() {
    if (document.getElementById('cs-style')) return;
    // Every choice button shares one style: accepting must not look easier than refusing.
    const css = `
      .cs-banner { position: fixed; left: 1rem; right: 1rem; bottom: 1rem; z-index: 2147483000;
        max-width: 40rem; margin: 0 auto; padding: 1rem 1.25rem; box-sizing: border-box;
        background: #fff; color: #111; border: 1px solid #555; border-radius: .5rem;
        box-shadow: 0 .25rem 1rem rgba(0, 0, 0, .25); font: 1rem/1.4 system-ui, sans-serif; }
      .cs-banner h2 { font-size: 1.125rem; margin: 0 0 .5rem; }
      .cs-banner p { margin: 0 0 .75rem; }
      .cs-actions { display: flex; flex-wrap: wrap; gap: .5rem; }
      .cs-banner button { font: inherit; padding: .5rem 1rem; border: 2px solid #111;
        border-radius: .25rem; background: #111; color: #fff; cursor: pointer; }
      .cs-banner :focus-visible { outline: 3px solid #1a5fd0; outline-offset: 2px; }
      .cs-banner form[hidden] { display: none; }
      .cs-banner fieldset { border: 0; margin: .75rem 0; padding: 0; }
      .cs-banner legend { font-weight: 600; padding: 0; }
      .cs-purpose { margin: .5rem 0; }
      .cs-purpose label { margin-left: .375rem; }
      .cs-purpose small { display: block; margin-left: 1.75rem; color: #444; }
      .cs-status { margin: .75rem 0 0; }
      .cs-status:empty { display: none; }
      .cs-banner .cs-receipt { margin-top: .75rem; padding: 0; border: 0; background: none;
        color: #111; text-decoration: underline; }`;
    document.head.appendChild(el('style', { id: 'cs-style' }, css));
  }

  const api = {
    configure,
    start,
    grant,
    reject,
    withdraw,
    receipt,
    identify,
    forgetIdentity,
    open,
    state,
    posthog: () => posthog,
  };

  if (document) {
    // A task later, so that configure() calls in the scripts after this one still count.
    onDomReady(() => window.setTimeout(() => {
      if (settings.autostart) start().catch((error) => console.warn(error));
    }, 0));
  }
  return api;
});
