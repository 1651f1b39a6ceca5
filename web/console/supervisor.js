// The supervisor view: every queue with its waiting chats (position, wait, intent, emotion), every
// agent with status and load, and per chat: watch it live, whisper (an internal note only agents
// see) or take it over; the day's quality inspections and voice of the customer.
//
// Queues and agents are read again every 3 s (`GET …/agents`, `GET …/queues`, then each
// `GET …/queues/{group}` for its waiting chats); a watched
// conversation is live on its own WebSocket, resumed from the last seq shown.

import { html, useState, useEffect } from '/console/htm-preact.js';
import { t } from '/console/i18n.js';
import { call, tenantPath, enc, newId } from '/console/api.js';
import { emotionText, duration, ErrorLine } from '/console/common.js';
import { Conversation } from '/console/workbench.js';

const REFRESH_MS = 3000;

export function Supervisor({ session }) {
  const [agents, setAgents] = useState([]);
  const [queues, setQueues] = useState([]);
  const [watched, setWatched] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');

  useEffect(() => {
    let stopped = false;
    const load = async () => {
      try {
        const [list, brief] = await Promise.all([call('GET', tenantPath('/agents')), call('GET', tenantPath('/queues'))]);
        const details = await Promise.all(brief.queues.map((queue) => call('GET', tenantPath(`/queues/${enc(queue.group)}`))));
        if (stopped) return;
        setAgents(list.agents);
        setQueues(details);
        setError(null);
      } catch (failure) {
        if (!stopped) setError(failure);
      }
    };
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  const takeOver = async (conversation) => {
    try {
      await call('POST', tenantPath(`/conversations/${enc(conversation)}/take-over`), { supervisor: session.agent });
      setNotice(`${t('sup.takeOver')}: ${conversation}`);
    } catch (failure) {
      setError(failure);
    }
  };

  return html`<main class="page supervisor">
    <div class="grid2">
      <section class="card" data-testid="sup-queues">
        <h2>${t('sup.queues')}</h2>
        ${queues.map((queue) => html`<div class="queue" key=${queue.group}>
          <h3>${queue.group} <span class="muted">· ${t('sup.waiting')} ${queue.waiting.length} · ${queue.assigned} ·
            ${queue.agents_online} ${t('presence.online')}</span></h3>
          ${queue.waiting.length > 0 && html`<table>
            <tr><th>${t('sup.position')}</th><th>${t('side.customer')}</th><th>${t('sup.wait')}</th><th>${t('side.intent')}</th><th>${t('side.emotion')}</th><th></th></tr>
            ${queue.waiting.map((chat) => html`<tr key=${chat.conversation} data-testid="sup-waiting">
              <td>${chat.position}</td><td>${chat.customer}${chat.tier === 'vip' ? ' ★' : ''}</td>
              <td>${duration(chat.waiting_s)} <span class="muted">(~${duration(chat.estimated_wait_s || 0)})</span></td>
              <td>${chat.intent || ''}</td><td>${emotionText(chat.emotion)}</td>
              <td><button onClick=${() => setWatched(chat.conversation)}>👁</button>
                ${session.agent && html`<button onClick=${() => takeOver(chat.conversation)}>${t('sup.takeOver')}</button>`}</td>
            </tr>`)}
          </table>`}
        </div>`)}
      </section>
      <section class="card" data-testid="sup-agents">
        <h2>${t('sup.agents')}</h2>
        <table>
          <tr><th>${t('adm.agent')}</th><th>${t('tickets.status')}</th><th>${t('sup.load')}</th><th>${t('adm.groups')}</th><th></th></tr>
          ${agents.map((agent) => html`<tr key=${agent.agent} data-testid="sup-agent">
            <td>${agent.agent}</td>
            <td><span class=${`dot ${agent.status}`}></span>${t(`presence.${agent.status}`)}${agent.connected ? '' : ' ·'}</td>
            <td><${Load} used=${agent.chats.length} capacity=${agent.capacity} /></td>
            <td class="muted">${agent.groups.join(', ')}</td>
            <td>${agent.chats.map((chat) => html`<button class="chip" title=${chat} onClick=${() => setWatched(chat)}>…${chat.slice(-4)}</button>`)}</td>
          </tr>`)}
        </table>
      </section>
    </div>
    ${notice && html`<p class="muted">${notice}</p>`}
    <${ErrorLine} error=${error} />
    ${watched && html`<section class="card watch">
      <div class="row"><strong>${watched}</strong>
        ${session.agent && html`<button onClick=${() => takeOver(watched)} data-testid="sup-take-over">${t('sup.takeOver')}</button>`}
        <button onClick=${() => setWatched(null)}>×</button></div>
      <div class="watch-body"><${Conversation} key=${watched} id=${watched} session=${session} whisper=${true} /></div>
    </section>`}
    <div class="grid2">
      <${Quality} />
      <${Voc} />
    </div>
  </main>`;
}

function Load({ used, capacity }) {
  const share = capacity ? Math.min(1, used / capacity) : 0;
  return html`<span class="load"><span class="load-bar"><span style=${{ width: `${share * 100}%` }}></span></span> ${used}/${capacity}</span>`;
}

/** Today's quality inspections, lowest score first. */
function Quality() {
  const [inspections, setInspections] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    call('GET', tenantPath('/quality?limit=200'))
      .then((answer) => {
        const today = new Date().toDateString();
        setInspections((answer.inspections || [])
          .filter((inspection) => new Date(inspection.inspected_at ?? inspection.inspected_at_ms).toDateString() === today)
          .sort((a, b) => a.score - b.score));
      })
      .catch(setError);
  }, []);
  return html`<section class="card" data-testid="sup-quality">
    <h2>${t('sup.quality')}</h2>
    ${inspections && inspections.length === 0 && html`<p class="muted">${t('sup.none')}</p>`}
    ${inspections && inspections.length > 0 && html`<table>
      <tr><th>${t('sup.score')}</th><th>ID</th><th></th></tr>
      ${inspections.slice(0, 30).map((inspection) => html`<tr key=${inspection.conversation}>
        <td>${inspection.score}</td><td class="mono">${inspection.conversation}</td>
        <td class="muted">${(inspection.fired || []).map((rule) => rule.rule || rule.name || rule).join(', ')}</td>
      </tr>`)}
    </table>`}
    <${ErrorLine} error=${error} />
  </section>`;
}

/** The last 24 hours' voice of the customer: intents, emotions, products mentioned. */
function Voc() {
  const [voc, setVoc] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    call('GET', tenantPath('/voc?hours=24')).then(setVoc).catch(setError);
  }, []);
  const sum = (field) => {
    const totals = {};
    for (const bucket of voc?.buckets || []) {
      for (const [name, value] of Object.entries(bucket[field] || {})) {
        const count = typeof value === 'number' ? value : Object.values(value || {}).reduce((a, b) => a + Number(b || 0), 0);
        totals[name] = (totals[name] || 0) + count;
      }
    }
    return Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, 8);
  };
  const bars = (rows) => {
    const top = Math.max(1, ...rows.map(([, count]) => count));
    return html`<div class="bars">${rows.map(([name, count]) => html`<span>${name}</span>
      <span class="bar-fill" style=${{ width: `${(count / top) * 100}%` }}></span><span>${count}</span>`)}</div>`;
  };
  const skus = (voc?.top_skus || []).map((entry) => [entry.sku, entry.mentions]);
  return html`<section class="card" data-testid="sup-voc">
    <h2>${t('sup.voc')}</h2>
    ${voc && html`<h3>${t('sup.intents')}</h3>${bars(sum('intents'))}
      <h3>${t('sup.emotions')}</h3>${bars(sum('emotions'))}
      <h3>${t('sup.skus')}</h3>${skus.length ? bars(skus) : html`<p class="muted">${t('sup.none')}</p>`}`}
    <${ErrorLine} error=${error} />
  </section>`;
}
