// The admin pages: the knowledge base (upload documents with their effective dates, list
// versions, delete), intents and the routing table, queues, agents and their passwords, API keys,
// and the widget's settings with the tag to put on a merchant's pages.

import { html, useState, useEffect } from '/console/htm-preact.js';
import { t } from '/console/i18n.js';
import { call, tenantPath, enc, session } from '/console/api.js';
import { ErrorLine } from '/console/common.js';

const SECTIONS = ['kb', 'routing', 'queues', 'agents', 'keys', 'widget'];
const TITLES = { kb: 'adm.kb', routing: 'adm.intents', queues: 'adm.queues', agents: 'adm.agents', keys: 'adm.keys', widget: 'adm.widget' };

export function Admin() {
  const [section, setSection] = useState(SECTIONS[0]);
  const View = { kb: Knowledge, routing: IntentsAndRouting, queues: Queues, agents: Agents, keys: Keys, widget: Widget }[section];
  return html`<main class="page admin">
    <nav class="tabs">${SECTIONS.map((name) => html`<button class=${name === section ? 'tab active' : 'tab'}
      data-testid=${`admin-${name}`} onClick=${() => setSection(name)}>${t(TITLES[name])}</button>`)}</nav>
    <${View} key=${section} />
  </main>`;
}

function IntentsAndRouting() {
  return html`<${Intents} /><${Routing} />`;
}

/** Runs `work`, keeping its error (or a "saved" note) for the section to show. */
function useAction() {
  const [error, setError] = useState(null);
  const [note, setNote] = useState('');
  const run = async (work, saved = true) => {
    setError(null);
    setNote('');
    try {
      await work();
      if (saved) setNote(t('adm.saved'));
    } catch (failure) {
      setError(failure);
    }
  };
  return [run, html`${note && html`<p class="ok">${note}</p>`}<${ErrorLine} error=${error} />`];
}

/** Knowledge base: `POST …/kb/documents` (multipart: file, title, effective dates), list, delete. */
function Knowledge() {
  const [documents, setDocuments] = useState([]);
  const [run, status] = useAction();
  const load = () => run(async () => {
    setDocuments((await call('GET', tenantPath('/kb/documents'))).documents || []);
  }, false);
  useEffect(() => { load(); }, []);
  const upload = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    for (const field of ['effective_from', 'effective_to', 'title']) {
      if (!form.get(field)) form.delete(field);
    }
    run(async () => {
      await call('POST', tenantPath('/kb/documents'), form);
      event.target.reset();
      await load();
    });
  };
  const remove = (id) => run(async () => {
    await call('DELETE', tenantPath(`/kb/documents/${enc(id)}`));
    await load();
  });
  return html`<section class="card">
    <h2>${t('adm.kb')}</h2>
    <form class="row" onSubmit=${upload}>
      <label>${t('adm.kbFile')} <input type="file" name="file" required data-testid="kb-file"
        accept=".md,.txt,.html,.htm,.pdf,.docx,.csv,.json" /></label>
      <input name="title" placeholder=${t('adm.kbTitle')} />
      <label>${t('adm.kbFrom')} <input type="date" name="effective_from" /></label>
      <label>${t('adm.kbTo')} <input type="date" name="effective_to" /></label>
      <button class="primary" data-testid="kb-submit">${t('adm.kbUpload')}</button>
    </form>
    <table>
      <tr><th>${t('adm.kbTitle')}</th><th>${t('adm.kbVersion')}</th><th>${t('adm.kbFrom')}</th><th>${t('adm.kbTo')}</th><th></th></tr>
      ${documents.map((doc) => html`<tr key=${doc.id} data-testid="kb-doc" data-id=${doc.id}>
        <td>${doc.title} <span class="muted">${doc.format || ''}</span></td>
        <td>v${doc.version}${doc.versions ? ` / ${Array.isArray(doc.versions) ? doc.versions.length : doc.versions}` : ''}</td>
        <td>${doc.effective_from || '—'}</td><td>${doc.effective_to || '—'}</td>
        <td><button onClick=${() => remove(doc.id)} data-testid="kb-delete">${t('adm.delete')}</button></td>
      </tr>`)}
    </table>
    ${status}
  </section>`;
}

/** The tenant's own intents: examples per intent, a candidate model trained from the pack's and
 *  the tenant's examples with its held-out accuracy, and the switch to it (or back to default). */
function Intents() {
  const [view, setView] = useState(null);
  const [intent, setIntent] = useState('');
  const [examples, setExamples] = useState('');
  const [candidate, setCandidate] = useState(null);
  const [run, status] = useAction();
  const load = () => run(async () => {
    const loaded = await call('GET', tenantPath('/intents'));
    setView(loaded);
    setCandidate(loaded.candidate);
  }, false);
  useEffect(() => { load(); }, []);
  const pick = (name) => {
    setIntent(name);
    const found = (view?.intents || []).find((item) => item.intent === name);
    setExamples((found?.examples || []).join('\n'));
  };
  const save = (event) => {
    event.preventDefault();
    const lines = examples.split('\n').map((line) => line.trim()).filter(Boolean);
    run(async () => {
      setView(await call('PUT', tenantPath(`/intents/${enc(intent.trim())}`), { examples: lines }));
      setCandidate(null);
    });
  };
  const train = () => run(async () => {
    setCandidate(await call('POST', tenantPath('/intents/candidates'), {}));
  }, false);
  const activate = (model) => run(async () => {
    setView(await call('POST', tenantPath('/intents/activate'), { model }));
  });
  const percent = (value) => `${(100 * (value || 0)).toFixed(1)}%`;
  return html`<section class="card">
    <h2>${t('adm.intentsTitle')}</h2>
    <p>${t('adm.intentModel')}: <b data-testid="intent-model">${view?.model || 'default'}</b>
      ${view?.active && view.active.model !== 'default'
        && html` <span class="muted">${t('adm.accuracy')} ${percent(view.active.accuracy)}</span>`}
      ${view?.model && view.model !== 'default'
        && html` <button onClick=${() => activate('default')} data-testid="intent-default">${t('adm.backToDefault')}</button>`}</p>
    <form onSubmit=${save} class="stack">
      <label>${t('adm.intentName')} <input value=${intent} onInput=${(event) => pick(event.target.value)}
        list="intent-names" placeholder="gift_wrap" required pattern="[a-z][a-z0-9_]{0,63}" data-testid="intent-name" /></label>
      <datalist id="intent-names">${(view?.intents || []).map((item) => html`<option value=${item.intent} />`)}</datalist>
      <textarea rows="6" value=${examples} onInput=${(event) => setExamples(event.target.value)}
        placeholder=${t('adm.intentExamples')} data-testid="intent-examples"></textarea>
      <button class="primary" data-testid="intent-save">${t('adm.save')}</button>
    </form>
    <p><button onClick=${train} data-testid="intent-train">${t('adm.train')}</button>
      ${candidate && html` <span data-testid="intent-candidate" data-model=${candidate.model}>
        ${t('adm.candidate')} ${candidate.model}: ${t('adm.accuracy')} ${percent(candidate.accuracy)},
        ${t('adm.heldOut')} ${candidate.held_out}, ${t('adm.trainedOn')} ${candidate.trained_on}
        <button class="primary" onClick=${() => activate(candidate.model)} data-testid="intent-activate">${t('adm.activate')}</button></span>`}</p>
    <table>
      <tr><th>${t('adm.intentName')}</th><th>${t('adm.packExamples')}</th><th>${t('adm.ownExamples')}</th></tr>
      ${(view?.intents || []).map((item) => html`<tr key=${item.intent} data-testid="intent-row">
        <td><a href="#" onClick=${(event) => { event.preventDefault(); pick(item.intent); }}>${item.intent}</a></td>
        <td>${item.pack_examples}</td><td>${item.examples.length}</td></tr>`)}
    </table>
    ${status}
  </section>`;
}

/** The routing table: `intent = group` lines and the default group. */
function Routing() {
  const [lines, setLines] = useState('');
  const [fallback, setFallback] = useState('');
  const [run, status] = useAction();
  useEffect(() => {
    run(async () => {
      const table = await call('GET', tenantPath('/routing-table'));
      setLines(Object.entries(table.routes || {}).map(([intent, group]) => `${intent} = ${group}`).join('\n'));
      setFallback(table.default_group || '');
    }, false);
  }, []);
  const save = (event) => {
    event.preventDefault();
    const routes = {};
    for (const line of lines.split('\n')) {
      const [intent, group] = line.split('=').map((part) => part.trim());
      if (intent && group) routes[intent] = group;
    }
    run(() => call('PUT', tenantPath('/routing-table'), { routes, default_group: fallback || null }));
  };
  return html`<section class="card">
    <h2>${t('adm.routing')}</h2>
    <form onSubmit=${save} class="stack">
      <textarea rows="10" class="mono" value=${lines} onInput=${(event) => setLines(event.target.value)}
        placeholder="refund = after_sales"></textarea>
      <label>${t('adm.defaultGroup')} <input value=${fallback} onInput=${(event) => setFallback(event.target.value)} /></label>
      <button class="primary">${t('adm.save')}</button>
    </form>
    ${status}
  </section>`;
}

/** Each group's queue settings. */
function Queues() {
  const [queues, setQueues] = useState([]);
  const [run, status] = useAction();
  const load = () => run(async () => {
    const { queues: brief } = await call('GET', tenantPath('/queues'));
    setQueues(await Promise.all(brief.map((queue) => call('GET', tenantPath(`/queues/${enc(queue.group)}`)))));
  }, false);
  useEffect(() => { load(); }, []);
  const number = (value) => (value === '' || value == null ? null : Number(value));
  const save = (group) => (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    run(async () => {
      await call('PUT', tenantPath(`/queues/${enc(group)}`), {
        max_waiting: number(form.get('max_waiting')), offer_timeout_s: number(form.get('offer_timeout_s')),
        overflow_after_s: number(form.get('overflow_after_s')), overflow_to: form.get('overflow_to') || null,
      });
      await load();
    });
  };
  return html`<section class="card">
    <h2>${t('adm.queues')}</h2>
    <table>
      <tr><th>${t('adm.group')}</th><th>max_waiting</th><th>offer_timeout_s</th><th>overflow_after_s</th><th>overflow_to</th><th></th></tr>
      ${queues.map((queue) => html`<tr key=${queue.group}><td>${queue.group}</td>
        <td colspan="5"><form class="row" onSubmit=${save(queue.group)}>
          <input name="max_waiting" type="number" min="0" value=${queue.config?.max_waiting ?? ''} />
          <input name="offer_timeout_s" type="number" min="1" value=${queue.config?.offer_timeout_s ?? ''} />
          <input name="overflow_after_s" type="number" min="1" value=${queue.config?.overflow_after_s ?? ''} />
          <input name="overflow_to" value=${queue.config?.overflow_to ?? ''} />
          <button>${t('adm.save')}</button></form></td></tr>`)}
    </table>
    ${status}
  </section>`;
}

/** Seats: groups, capacity, status, and (admins) the login password and role. */
function Agents() {
  const [agents, setAgents] = useState([]);
  const [run, status] = useAction();
  const load = () => run(async () => setAgents((await call('GET', tenantPath('/agents'))).agents), false);
  useEffect(() => { load(); }, []);
  const save = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = {
      groups: String(form.get('groups') || '').split(',').map((g) => g.trim()).filter(Boolean),
      capacity: Number(form.get('capacity') || 0),
      status: form.get('status'),
    };
    if (form.get('password')) {
      body.password = form.get('password');
      body.login_role = form.get('login_role');
    }
    run(async () => {
      await call('PUT', tenantPath(`/agents/${enc(String(form.get('agent')).trim())}`), body);
      event.target.reset();
      await load();
    });
  };
  const edit = (agent) => {
    const form = document.getElementById('agent-form');
    form.agent.value = agent.agent;
    form.groups.value = agent.groups.join(', ');
    form.capacity.value = agent.capacity;
    form.status.value = agent.status;
  };
  return html`<section class="card">
    <h2>${t('adm.agents')}</h2>
    <table>
      <tr><th>${t('adm.agent')}</th><th>${t('tickets.status')}</th><th>${t('adm.groups')}</th><th>${t('adm.capacity')}</th><th></th></tr>
      ${agents.map((agent) => html`<tr key=${agent.agent} data-testid="admin-agent"><td>${agent.agent}</td>
        <td>${t(`presence.${agent.status}`)}</td><td>${agent.groups.join(', ')}</td><td>${agent.capacity}</td>
        <td><button onClick=${() => edit(agent)}>✎</button></td></tr>`)}
    </table>
    <form id="agent-form" class="row" onSubmit=${save}>
      <input name="agent" required placeholder=${t('adm.agent')} />
      <input name="groups" placeholder=${t('adm.groups')} />
      <input name="capacity" type="number" min="0" max="100" placeholder=${t('adm.capacity')} />
      <select name="status">${['online', 'away', 'offline'].map((s) => html`<option value=${s}>${t(`presence.${s}`)}</option>`)}</select>
      <input name="password" type="password" minlength="8" autocomplete="new-password" placeholder=${t('adm.password')} />
      <select name="login_role"><option value="agent">agent</option><option value="supervisor">supervisor</option></select>
      <button class="primary">${t('adm.save')}</button>
    </form>
    ${status}
  </section>`;
}

/** API keys: list, issue (the text is shown once), revoke. */
function Keys() {
  const [keys, setKeys] = useState([]);
  const [issued, setIssued] = useState('');
  const [run, status] = useAction();
  const load = () => run(async () => setKeys((await call('GET', tenantPath('/api-keys'))).keys || []), false);
  useEffect(() => { load(); }, []);
  const issue = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    run(async () => {
      const answer = await call('POST', tenantPath('/api-keys'), {
        role: form.get('role'), name: form.get('name') || null, agent: form.get('agent') || null,
      });
      setIssued(answer.key);
      event.target.reset();
      await load();
    });
  };
  const revoke = (id) => run(async () => {
    await call('DELETE', tenantPath(`/api-keys/${enc(id)}`));
    await load();
  });
  return html`<section class="card">
    <h2>${t('adm.keys')}</h2>
    <form class="row" onSubmit=${issue}>
      <input name="name" placeholder=${t('adm.keyName')} />
      <select name="role">${['admin', 'supervisor', 'agent', 'integration'].map((role) => html`<option>${role}</option>`)}</select>
      <input name="agent" placeholder=${t('adm.agent')} />
      <button class="primary">${t('adm.issue')}</button>
    </form>
    ${issued && html`<p>${t('adm.newKey')} <code class="mono">${issued}</code></p>`}
    <table>
      <tr><th>${t('adm.keyName')}</th><th>${t('adm.role')}</th><th>${t('adm.agent')}</th><th></th></tr>
      ${keys.map((key) => html`<tr key=${key.id} class=${key.revoked ? 'muted' : ''}>
        <td>${key.name || key.id}</td><td>${key.role}</td><td>${key.agent || ''}</td>
        <td>${!key.revoked && key.id !== session()?.keyId && html`<button onClick=${() => revoke(key.id)}>${t('adm.revoke')}</button>`}</td>
      </tr>`)}
    </table>
    ${status}
  </section>`;
}

/** The widget: origins, identity verification, rotation, and the tag for the merchant's pages. */
function Widget() {
  const [widget, setWidget] = useState(null);
  const [run, status] = useAction();
  useEffect(() => {
    run(async () => {
      try {
        setWidget(await call('GET', tenantPath('/widget')));
      } catch (failure) {
        if (failure.status !== 404) throw failure;
        setWidget({ origins: [], identity_required: false });
      }
    }, false);
  }, []);
  const save = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    run(async () => setWidget(await call('PUT', tenantPath('/widget'), {
      origins: String(form.get('origins') || '').split('\n').map((o) => o.trim()).filter(Boolean),
      identity_required: form.get('identity') === 'on',
      rotate: form.get('rotate') === 'on',
    })));
  };
  if (!widget) return html`<section class="card">${status}</section>`;
  const tag = widget.website_token
    ? `<script src="${location.origin}/widget.js" data-tenant="${session().tenant}" data-token="${widget.website_token}" async></script>`
    : '';
  return html`<section class="card">
    <h2>${t('adm.widget')}</h2>
    <form class="stack" onSubmit=${save}>
      <label>${t('adm.origins')}<textarea name="origins" rows="4" class="mono">${(widget.origins || []).join('\n')}</textarea></label>
      <label><input type="checkbox" name="identity" checked=${widget.identity_required} /> ${t('adm.identity')}</label>
      <label><input type="checkbox" name="rotate" /> ${t('adm.rotate')}</label>
      <button class="primary">${t('adm.save')}</button>
    </form>
    ${tag && html`<p>${t('adm.snippet')}</p><pre class="mono snippet">${tag}</pre>
      <p><a href=${`/widget/demo.html?tenant=${enc(session().tenant)}&token=${enc(widget.website_token)}`} target="_blank" rel="noopener">/widget/demo.html</a></p>`}
    ${status}
  </section>`;
}
