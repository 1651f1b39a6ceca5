// The consoles' page: sign-in, then the agent workbench (`/console/`), the supervisor view
// (`/console/supervisor`) and the admin pages (`/console/admin`), switched without reloading.

import { html, render, useState, useEffect } from '/console/htm-preact.js';
import { t, currentLang, setLang } from '/console/i18n.js';
import { session, saveSession, login, loginWithKey } from '/console/api.js';

// Each page's module is loaded when the page is first opened (an agent never loads the others).
const PAGES = {
  workbench: { path: '/console/', load: () => import('/console/workbench.js').then((m) => m.Workbench), label: 'nav.workbench' },
  supervisor: { path: '/console/supervisor', load: () => import('/console/supervisor.js').then((m) => m.Supervisor), label: 'nav.supervisor' },
  admin: { path: '/console/admin', load: () => import('/console/admin.js').then((m) => m.Admin), label: 'nav.admin' },
};

/** The page `name`, once its module is loaded. */
function Page({ name, session: current }) {
  const [View, setView] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    PAGES[name].load().then((view) => setView(() => view), setError);
  }, [name]);
  if (error) return html`<p class="error">${error.message}</p>`;
  return View ? html`<${View} session=${current} />` : null;
}

/** The page a path names. */
function pageOf(pathname) {
  const name = pathname.replace(/^\/console\/?/, '').split('/')[0];
  return PAGES[name] ? name : 'workbench';
}

/** The pages a role may open (an admin signed in with a key has no seat, so no workbench). */
function pagesFor(current) {
  if (current.role === 'admin' && !current.agent) return ['supervisor', 'admin'];
  if (current.role === 'admin') return ['workbench', 'supervisor', 'admin'];
  if (current.role === 'supervisor') return ['workbench', 'supervisor'];
  return ['workbench'];
}

function Login({ onDone }) {
  const [useKey, setUseKey] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    setBusy(true);
    setError('');
    try {
      const tenant = String(form.get('tenant')).trim();
      const done = useKey
        ? await loginWithKey(tenant, String(form.get('key')).trim())
        : await login(tenant, String(form.get('user')).trim(), String(form.get('password')));
      onDone(done);
    } catch (failure) {
      setError(`${t('login.failed')}: ${failure.message}`);
    } finally {
      setBusy(false);
    }
  };
  const last = JSON.parse(localStorage.getItem('crest.lastLogin') || '{}');
  return html`<main class="login">
    <form class="card" onSubmit=${submit}>
      <h1>${t('app.title')}</h1>
      <label>${t('login.tenant')}<input name="tenant" data-testid="login-tenant" required value=${last.tenant || 'demo'} autocomplete="organization" /></label>
      ${useKey
        ? html`<label>${t('login.key')}<input name="key" data-testid="login-key" type="password" required autocomplete="off" /></label>`
        : html`<label>${t('login.user')}<input name="user" data-testid="login-user" required value=${last.user || ''} autocomplete="username" /></label>
            <label>${t('login.password')}<input name="password" data-testid="login-password" type="password" required autocomplete="current-password" /></label>`}
      <button type="submit" class="primary" data-testid="login-submit" disabled=${busy}>${t('login.submit')}</button>
      <a href="#" class="switch" data-testid="login-use-key" onClick=${(event) => { event.preventDefault(); setUseKey(!useKey); }}>
        ${useKey ? t('login.usePassword') : t('login.useKey')}</a>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <${LangSwitch} />
    </form>
  </main>`;
}

function LangSwitch() {
  const [, redraw] = useState(0);
  const other = currentLang() === 'zh' ? 'en' : 'zh';
  return html`<button type="button" class="lang" data-testid="lang-switch"
    onClick=${() => { setLang(other); redraw((n) => n + 1); window.dispatchEvent(new Event('crest:lang')); }}>
    ${other === 'zh' ? '中文' : 'English'}</button>`;
}

function App() {
  const [current, setCurrent] = useState(session());
  const [page, setPage] = useState(pageOf(location.pathname));
  const [, redraw] = useState(0);
  useEffect(() => {
    const popped = () => setPage(pageOf(location.pathname));
    const signedOut = () => setCurrent(null);
    const relang = () => redraw((n) => n + 1);
    window.addEventListener('popstate', popped);
    window.addEventListener('crest:signed-out', signedOut);
    window.addEventListener('crest:lang', relang);
    return () => {
      window.removeEventListener('popstate', popped);
      window.removeEventListener('crest:signed-out', signedOut);
      window.removeEventListener('crest:lang', relang);
    };
  }, []);
  useEffect(() => {
    document.title = t('app.title');
  });
  if (!current) {
    return html`<${Login} onDone=${(done) => {
      localStorage.setItem('crest.lastLogin', JSON.stringify({ tenant: done.tenant, user: done.agent || '' }));
      setCurrent(done);
    }} />`;
  }
  const allowed = pagesFor(current);
  const shown = allowed.includes(page) ? page : allowed[0];
  const go = (name) => (event) => {
    event.preventDefault();
    history.pushState(null, '', PAGES[name].path);
    setPage(name);
  };
  return html`<div class="shell">
    <header class="top">
      <strong class="brand">Crest</strong>
      <nav>${allowed.map((name) => html`<a href=${PAGES[name].path} class=${name === shown ? 'active' : ''}
        data-testid=${`nav-${name}`} onClick=${go(name)}>${t(PAGES[name].label)}</a>`)}</nav>
      <span class="who">${current.agent || current.role} @ ${current.tenant}</span>
      <${LangSwitch} />
      <button type="button" onClick=${() => { saveSession(null); setCurrent(null); }}>${t('nav.logout')}</button>
    </header>
    <${Page} key=${shown} name=${shown} session=${current} />
  </div>`;
}

setLang(currentLang());
render(html`<${App} />`, document.getElementById('app'));
