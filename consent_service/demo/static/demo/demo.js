// The demo page's own behaviour; everything consent-related goes through window.ConsentService.
(function () {
  'use strict';

  const eventsUrl = document.currentScript.dataset.eventsUrl;
  const $ = (id) => document.getElementById(id);
  let clicks = 0;

  function describe(state) {
    if (!state) return 'Loading…';
    const parts = Object.entries(state.purposes).map(([key, purpose]) => {
      const decision = purpose.granted ? 'granted' : purpose.choice === null ? 'not decided' : 'refused';
      return `${key.replace(/_/g, ' ')}: ${decision}`;
    });
    return parts.join(', ') + (state.gpc ? ' (Global Privacy Control is on)' : '');
  }

  // No posthog.identify() here: consent.js identifies a logged-in user with the id the
  // server minted. A page's own ids (user pks, emails) are anyone's to guess.
  window.addEventListener('consentservice:change', (event) => {
    $('consent-summary').textContent = describe(event.detail);
  });
  window.ConsentService.start().catch(() => {});
  $('consent-summary').textContent = describe(window.ConsentService.state());

  $('capture').addEventListener('click', () => {
    clicks += 1;
    const posthog = window.ConsentService.posthog();
    if (posthog) posthog.capture('demo_button', { n: clicks });
    $('capture-count').textContent = `captured ${clicks} time(s); sent only with consent`;
  });
  $('change-consent').addEventListener('click', (event) => {
    event.preventDefault();
    window.ConsentService.open();
  });
  $('withdraw').addEventListener('click', () => {
    window.ConsentService.withdraw().catch(() => {
      $('consent-summary').textContent = 'The withdrawal could not be saved: please try again.';
    });
  });

  if (!eventsUrl) return;

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    return td;
  }

  async function poll() {
    try {
      const response = await fetch(eventsUrl, { mode: 'cors', cache: 'no-store' });
      if (!response.ok) throw new Error(String(response.status));
      const events = await response.json();
      const rows = events.slice(-20).reverse().map((item) => {
        const row = document.createElement('tr');
        const time = new Date(item.received_at).toLocaleTimeString();
        row.append(cell(item.event.event), cell(item.distinct_id), cell(item.route), cell(time));
        return row;
      });
      $('events').replaceChildren(...rows);
      $('events-status').textContent = `${events.length} event(s) received in all.`;
    } catch (error) {
      $('events-status').textContent = 'The sandbox is not reachable.';
    }
  }

  poll();
  window.setInterval(poll, 2000);
})();
