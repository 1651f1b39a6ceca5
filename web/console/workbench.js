// The agent workbench: presence, incoming offers with their countdown and handoff summary, the
// agent's chats, the open conversation (whole history, bot annotations, notes), the customer's
// side panel (summary, orders, knowledge suggestions, tickets), reply / note / transfer / resolve.
//
// Live updates come over the agent's WebSocket (`…/agents/{agent}/stream`). Each conversation
// keeps the last event seq it shows: a frame with the next seq is appended, a gap (frames lost
// while the socket was down) is filled from `…/conversations/{id}/events?after=SEQ`, so a
// reconnect loses nothing.

import { html, useState, useEffect, useRef, useCallback, useMemo } from '/console/htm-preact.js';
import { t } from '/console/i18n.js';
import { call, tenantPath, enc, newId, liveSocket } from '/console/api.js';
import { historyLines, reasonText, emotionText, clock, ErrorLine } from '/console/common.js';

const EVENTS_PAGE = 500;

/** Every event of a conversation after `after`, page by page. */
export async function eventsAfter(id, after) {
  const all = [];
  let from = after;
  for (;;) {
    const page = await call('GET', tenantPath(`/conversations/${enc(id)}/events?after=${from}&limit=${EVENTS_PAGE}`));
    all.push(...page.events);
    if (page.events.length < EVENTS_PAGE) return all;
    from = page.events[page.events.length - 1].seq;
  }
}

/** A tiny publish/subscribe of conversation frames, by conversation id. */
function frameBus() {
  const listeners = new Map();
  return {
    on(id, listener) {
      listeners.set(id, listener);
      return () => listeners.get(id) === listener && listeners.delete(id);
    },
    emit(id, event) {
      listeners.get(id)?.(event);
    },
  };
}

export function Workbench({ session }) {
  const [agent, setAgent] = useState(null);
  const [chats, setChats] = useState({});
  const [openId, setOpenId] = useState(null);
  const [live, setLive] = useState(false);
  const [error, setError] = useState(null);
  const [now, setNow] = useState(Date.now());
  const deadlines = useRef({});
  const bus = useMemo(frameBus, []);
  const refreshTimer = useRef(null);
  const agentPath = tenantPath(`/agents/${enc(session.agent)}`);

  const applySnapshot = useCallback((snapshot) => {
    for (const offer of snapshot.offer_details || []) {
      deadlines.current[offer.conversation] = Date.now() + offer.expires_in_s * 1000;
    }
    setAgent(snapshot);
    setChats((known) => {
      const next = {};
      for (const id of snapshot.chats || []) next[id] = known[id] || { id, preview: '', unread: 0 };
      return next;
    });
    for (const id of snapshot.chats || []) loadChatHead(id);
  }, []);

  const loadChatHead = async (id) => {
    try {
      const view = await call('GET', tenantPath(`/conversations/${enc(id)}`));
      const last = [...view.messages].reverse().find((message) => !message.internal);
      setChats((known) => known[id]
        ? { ...known, [id]: { ...known[id], customer: view.customer, channel: view.channel, status: view.status,
          preview: known[id].preview || last?.text || '' } }
        : known);
    } catch (failure) {
      setError(failure);
    }
  };

  const refresh = useCallback(() => {
    clearTimeout(refreshTimer.current);
    refreshTimer.current = setTimeout(async () => {
      try {
        applySnapshot(await call('GET', agentPath));
      } catch (failure) {
        setError(failure);
      }
    }, 50);
  }, []);

  useEffect(() => {
    const socket = liveSocket(
      () => `${agentPath}/stream`,
      (frame) => {
        if (frame.kind === 'snapshot') applySnapshot(frame.agent);
        else if (frame.kind === 'desk' || frame.kind === 'lagged') refresh();
        else if (frame.kind === 'ticket') window.dispatchEvent(new Event('crest:tickets'));
        else if (frame.kind === 'conversation') {
          const data = frame.event.data || {};
          const shown = ['customer_message_received', 'bot_replied', 'agent_replied', 'system_notice'];
          if (shown.includes(data.type) && !data.internal) {
            setChats((known) => known[frame.conversation]
              ? { ...known, [frame.conversation]: { ...known[frame.conversation], preview: data.text,
                unread: known[frame.conversation].unread + (data.type === 'customer_message_received' ? 1 : 0) } }
              : known);
          }
          bus.emit(frame.conversation, frame.event);
        }
      },
      (state) => setLive(state === 'open'),
    );
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      socket.close();
      clearInterval(tick);
      clearTimeout(refreshTimer.current);
    };
  }, []);

  const setPresence = async (status) => {
    try {
      setAgent(await call('PUT', agentPath, { status }));
    } catch (failure) {
      setError(failure);
    }
  };

  const answerOffer = async (conversation, verb) => {
    try {
      await call('POST', `${agentPath}/offers/${enc(conversation)}/${verb}`);
      if (verb === 'accept') setOpenId(conversation);
      refresh();
    } catch (failure) {
      setError(failure);
      refresh();
    }
  };

  const open = (id) => {
    setOpenId(id);
    setChats((known) => known[id] ? { ...known, [id]: { ...known[id], unread: 0 } } : known);
  };

  if (!agent) {
    return html`<main class="workbench loading">${error ? html`<${ErrorLine} error=${error} />` : '…'}</main>`;
  }
  const offers = agent.offer_details || [];
  const chatList = Object.values(chats);
  return html`<main class="workbench">
    <aside class="left">
      <div class="bar">
        <select data-testid="presence" value=${agent.status} class=${`presence ${agent.status}`}
          onChange=${(event) => setPresence(event.target.value)}>
          ${['online', 'away', 'offline'].map((status) => html`<option value=${status}>${t(`presence.${status}`)}</option>`)}
        </select>
        <span class=${live ? 'live on' : 'live'} data-testid="live">${live ? t('live.connected') : t('live.reconnecting')}</span>
      </div>
      <h2>${t('offers.title')}</h2>
      ${offers.length === 0 && html`<p class="muted">${t('offers.none')}</p>`}
      ${offers.map((offer) => html`<${Offer} key=${offer.conversation} offer=${offer}
        left=${((deadlines.current[offer.conversation] || now) - now) / 1000}
        onAccept=${() => answerOffer(offer.conversation, 'accept')}
        onDecline=${() => answerOffer(offer.conversation, 'decline')} />`)}
      <h2>${t('chats.title')} <span class="count">${chatList.length}/${agent.capacity}</span></h2>
      ${chatList.length === 0 && html`<p class="muted">${t('chats.none')}</p>`}
      <ul class="chats">
        ${chatList.map((chat) => html`<li key=${chat.id} data-testid="chat-item" data-conversation=${chat.id}
          class=${chat.id === openId ? 'chat active' : 'chat'} onClick=${() => open(chat.id)}>
          <strong>${chat.customer || chat.id.slice(-6)}</strong>
          ${chat.unread > 0 && html`<span class="badge">${chat.unread}</span>`}
          <span class="preview">${chat.preview}</span>
        </li>`)}
      </ul>
      <${ErrorLine} error=${error} />
    </aside>
    ${openId
      ? html`<${Conversation} key=${openId} id=${openId} session=${session} bus=${bus} live=${live}
          onClosed=${() => refresh()} />`
      : html`<section class="conversation empty"><p class="muted">${t('chat.pick')}</p></section>`}
  </main>`;
}

function Offer({ offer, left, onAccept, onDecline }) {
  const summary = offer.summary || {};
  return html`<div class="offer card" data-testid="offer" data-conversation=${offer.conversation}>
    <div class="offer-head">
      <strong>${offer.group}</strong>
      <span class=${left < 10 ? 'countdown urgent' : 'countdown'}>${t('offers.expires', { s: Math.max(0, Math.ceil(left)) })}</span>
    </div>
    <${Summary} summary=${summary} />
    <div class="actions">
      <button class="primary" data-testid="offer-accept" onClick=${onAccept}>${t('offers.accept')}</button>
      <button data-testid="offer-decline" onClick=${onDecline}>${t('offers.decline')}</button>
    </div>
  </div>`;
}

/** The handoff summary: reason, intent, emotion, language, what the bot tried, orders, last words. */
export function Summary({ summary }) {
  if (!summary || typeof summary !== 'object') return null;
  const rows = [
    ['side.reason', reasonText(summary.reason)],
    ['side.intent', summary.intent],
    ['side.emotion', emotionText(summary.emotion)],
    ['side.language', summary.language],
    ['side.botTried', (summary.bot_intents || []).join(', ')],
    ['side.orders', (summary.orders || []).join(', ')],
    ['side.lastWords', summary.last_customer_text],
  ].filter(([, value]) => value);
  return html`<dl class="summary">${rows.map(([key, value]) => html`<dt>${t(key)}</dt><dd>${value}</dd>`)}</dl>`;
}

/**
 * One open conversation: its history (loaded, then kept up to date by seq from the agent's
 * socket frames), the composer and the actions, and the customer's side panel.
 */
export function Conversation({ id, session, bus, live, onClosed, whisper = false }) {
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(whisper);
  const [text, setText] = useState('');
  const [target, setTarget] = useState('');
  const lastSeq = useRef(0);
  const loading = useRef(null);
  const scroller = useRef(null);
  const path = tenantPath(`/conversations/${enc(id)}`);

  /** Fetches what follows the last shown seq (one fetch at a time; frames that arrive meanwhile
   *  are in its answer or come after it). */
  const catchUp = useCallback(() => {
    if (loading.current) return loading.current;
    loading.current = eventsAfter(id, lastSeq.current)
      .then((fresh) => {
        const next = fresh.filter((event) => event.seq > lastSeq.current);
        if (next.length) {
          lastSeq.current = next[next.length - 1].seq;
          setEvents((shown) => [...shown, ...next]);
        }
      })
      .catch(setError)
      .finally(() => { loading.current = null; });
    return loading.current;
  }, [id]);

  useEffect(() => {
    const arrived = (event) => {
      if (event.seq === lastSeq.current + 1 && !loading.current) {
        lastSeq.current = event.seq;
        setEvents((shown) => [...shown, event]);
      } else if (event.seq > lastSeq.current) {
        catchUp().then(() => event.seq > lastSeq.current && catchUp());
      }
    };
    if (bus) {
      catchUp();
      return bus.on(id, arrived);
    }
    // No agent socket (a supervisor watching): the conversation's own stream, resumed from the
    // last seq shown at each reconnection.
    const socket = liveSocket(() => `${path}/stream?after=${lastSeq.current}`, arrived);
    return () => socket.close();
  }, [id]);

  // After a reconnect, whatever happened meanwhile.
  useEffect(() => {
    if (live) catchUp();
  }, [live]);

  useEffect(() => {
    const box = scroller.current;
    if (box) box.scrollTop = box.scrollHeight;
  }, [events.length]);

  // The customer, their earlier conversations (any channel), orders and parcels.
  const [customerInfo, setCustomerInfo] = useState({ customer: null, earlier: [], orders: [] });
  useEffect(() => {
    let stopped = false;
    (async () => {
      try {
        const view = await call('GET', path);
        const customerPath = tenantPath(`/customers/${enc(view.customer)}`);
        const [history, orders] = await Promise.all([
          call('GET', `${customerPath}/conversations?limit=5`).catch(() => ({ conversations: [] })),
          call('GET', `${customerPath}/orders?limit=5`).catch(() => ({ orders: [] })),
        ]);
        if (stopped) return;
        setCustomerInfo({
          customer: view.customer,
          earlier: (history.conversations || []).filter((conversation) => conversation.id !== id).reverse(),
          orders: orders.orders || [],
        });
      } catch (failure) {
        if (!stopped) setError(failure);
      }
    })();
    return () => { stopped = true; };
  }, [id]);

  const lines = useMemo(() => historyLines(events), [events]);
  const handoff = [...events].reverse().find((event) => event.data?.type === 'handoff_requested');
  const closed = events.some((event) => event.data?.type === 'closed' || event.data?.type === 'resolved');
  const lastCustomer = lines.filter((line) => line.role === 'customer').pop();
  const suggestions = lines.filter((line) => line.role === 'bot' && lastCustomer && line.seq > lastCustomer.seq)
    .flatMap((line) => line.citations || []);
  const customer = customerInfo.customer || handoff?.data?.customer;
  const [suggested, setSuggested] = useState([]);
  useEffect(() => {
    if (!lastCustomer?.text) return;
    call('GET', tenantPath(`/kb/search?q=${enc(lastCustomer.text.slice(0, 200))}&limit=3`))
      .then((answer) => setSuggested(answer.suggestions || []), () => setSuggested([]));
  }, [lastCustomer?.seq]);

  const act = async (work) => {
    setError(null);
    try {
      await work();
    } catch (failure) {
      setError(failure);
    }
  };
  const send = (event) => {
    event.preventDefault();
    const body = text.trim();
    if (!body) return;
    act(async () => {
      await call('POST', `${path}/agent-messages`, { agent: session.agent, id: newId('a'), text: body, internal: note });
      setText('');
    });
  };
  const resolve = () => act(async () => {
    await call('POST', `${path}/resolve`, session.agent ? { agent: session.agent } : {});
    onClosed?.();
  });
  const transfer = () => act(async () => {
    const to = target.trim();
    if (!to) return;
    const body = to.startsWith('group:') ? { group: to.slice(6), by: session.agent } : { agent: to, by: session.agent };
    await call('POST', `${path}/transfer`, body);
    setTarget('');
    onClosed?.();
  });

  return html`<section class="conversation">
    <header class="conv-head">
      <strong class="name" title=${customer || id}>${customer || id}</strong>
      <span class="muted id">${id}</span>
      <span class="spacer"></span>
      <input class="transfer" placeholder=${t('chat.transferTo')} value=${target}
        onInput=${(event) => setTarget(event.target.value)} data-testid="transfer-target" />
      <button onClick=${transfer} data-testid="chat-transfer">${t('chat.transfer')}</button>
      <button class="primary" onClick=${resolve} data-testid="chat-resolve" disabled=${closed}>${t('chat.resolve')}</button>
    </header>
    <div class="history" ref=${scroller} data-testid="history">
      ${customerInfo.earlier.map((earlier) => html`<div class="earlier" key=${earlier.id}>
        <div class="line event">${earlier.channel} · ${earlier.started_at?.slice(0, 16).replace('T', ' ')} · ${earlier.status}</div>
        ${earlier.messages.filter((message) => !message.internal).map((message) => html`<div class=${`line ${message.role} past`} key=${message.id}>
          <div class="who">${t(`role.${message.role}`)}${message.intent ? ` · ${message.intent}` : ''}</div>
          <div class="text">${message.text}</div></div>`)}
      </div>`)}
      ${lines.map((line) => html`<${Line} key=${line.seq} line=${line} />`)}
    </div>
    ${closed && html`<p class="muted closed">${t('chat.closed')}</p>`}
    <form class=${note ? 'composer note' : 'composer'} onSubmit=${send}>
      <textarea data-testid="composer-input" rows="3" value=${text} placeholder=${note ? t('chat.note') : t('chat.reply')}
        onInput=${(event) => setText(event.target.value)}
        onKeyDown=${(event) => { if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) send(event); }}></textarea>
      <div class="composer-actions">
        <label class="toggle"><input type="checkbox" checked=${note} onChange=${(event) => setNote(event.target.checked)}
          data-testid="composer-note" /> ${t('chat.noteMode')}</label>
        <button type="submit" class="primary" data-testid="composer-send">${t('chat.send')}</button>
      </div>
    </form>
    <${ErrorLine} error=${error} />
    <aside class="side">
      <h3>${t('side.summary')}</h3>
      ${handoff ? html`<${Summary} summary=${handoff.data.summary} />` : html`<p class="muted">—</p>`}
      <h3>${t('side.orders')}</h3>
      ${customerInfo.orders.length === 0 && html`<p class="muted">—</p>`}
      ${customerInfo.orders.map((order) => html`<div class="order card" key=${order.id} data-testid="order">
        <div><strong>${order.id}</strong> <span class="muted">${order.status}</span></div>
        ${order.total_cents != null && html`<div>${(order.total_cents / 100).toFixed(2)} ${order.currency || ''}</div>`}
        ${order.shipment && html`<div class="muted">${order.shipment.carrier} ${order.shipment.tracking_no} · ${order.shipment.status}${order.shipment.eta ? ` · ETA ${order.shipment.eta}` : ''}</div>`}
      </div>`)}
      <h3>${t('side.suggestions')}</h3>
      ${suggested.length > 0 && html`<ul class="suggestions" data-testid="kb-suggestions">${suggested.map((hit) => html`<li>
        <strong>${hit.title}</strong> <span class="muted">${hit.source === 'pack' ? '' : `v${hit.version}`}</span>
        <div class="passage">${hit.passage}</div>
        <button type="button" class="chip" onClick=${() => setText(hit.passage)}>↳</button></li>`)}</ul>`}
      ${suggestions.length > 0 && html`<p class="muted">${t('msg.cites')}: ${suggestions.map((cite) => `${cite.title} v${cite.version}`).join(', ')}</p>`}
      ${suggested.length === 0 && suggestions.length === 0 && html`<p class="muted">${t('side.noSuggestions')}</p>`}
      <${Tickets} conversation=${id} customer=${customer} session=${session} />
    </aside>
  </section>`;
}

function Line({ line }) {
  if (line.role === 'event') return html`<div class="line event">${line.text} <time>${clock(line.at)}</time></div>`;
  return html`<div class=${`line ${line.role}`} data-testid="message" data-role=${line.role}>
    <div class="who">${t(`role.${line.role}`)}${line.agent ? ` · ${line.agent}` : ''}${line.channel ? ` · ${line.channel}` : ''}
      <time>${clock(line.at)}</time></div>
    <div class="text">${line.text}</div>
    ${line.role === 'bot' && html`<div class="annotations">
      ${line.intent && html`<span>${t('msg.intent')}: ${line.intent}</span>`}
      ${line.confidence != null && html`<span>${t('msg.confidence')}: ${Math.round(line.confidence * 100)}%</span>`}
      ${line.emotion && html`<span>${emotionText(line.emotion)}</span>`}
      ${line.citations?.length > 0 && html`<span>${t('msg.cites')}: ${line.citations.map((cite) => cite.title).join(', ')}</span>`}
    </div>`}
  </div>`;
}

/** The conversation's tickets: create, comment, change status. */
function Tickets({ conversation, customer, session }) {
  const [tickets, setTickets] = useState([]);
  const [error, setError] = useState(null);
  const load = async () => {
    try {
      setTickets((await call('GET', tenantPath(`/tickets?conversation=${enc(conversation)}`))).tickets || []);
    } catch (failure) {
      setError(failure);
    }
  };
  useEffect(() => {
    load();
    window.addEventListener('crest:tickets', load);
    return () => window.removeEventListener('crest:tickets', load);
  }, [conversation]);
  const create = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      await call('POST', tenantPath('/tickets'), {
        kind: form.get('kind'), subject: form.get('subject') || null, conversation,
        customer: customer || null, created_by: session.agent, assignee: session.agent,
      });
      event.target.reset();
      load();
    } catch (failure) {
      setError(failure);
    }
  };
  const patch = async (id, body) => {
    try {
      await call('PATCH', tenantPath(`/tickets/${enc(id)}`), body);
      load();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<div class="tickets">
    <h3>${t('side.tickets')}</h3>
    ${tickets.length === 0 && html`<p class="muted">${t('tickets.none')}</p>`}
    ${tickets.map((ticket) => html`<div class="ticket card" key=${ticket.id}>
      <div><strong>${ticket.kind}</strong> ${ticket.subject || ''}</div>
      <select value=${ticket.status} onChange=${(event) => patch(ticket.id, { status: event.target.value })}>
        ${['open', 'pending', 'solved', 'closed'].map((status) => html`<option value=${status}>${status}</option>`)}
      </select>
      <form onSubmit=${(event) => {
        event.preventDefault();
        const text = new FormData(event.target).get('comment');
        if (text) patch(ticket.id, { comment: { author: session.agent || 'admin', text, public: false } });
        event.target.reset();
      }}><input name="comment" placeholder=${t('tickets.comment')} /><button>${t('tickets.addComment')}</button></form>
    </div>`)}
    <form class="new-ticket" onSubmit=${create}>
      <select name="kind">${['return', 'refund', 'complaint', 'exchange', 'callback', 'other'].map((kind) => html`<option>${kind}</option>`)}</select>
      <input name="subject" placeholder=${t('tickets.subject')} />
      <button>${t('tickets.create')}</button>
    </form>
    <${ErrorLine} error=${error} />
  </div>`;
}
