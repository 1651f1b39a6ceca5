/*
 * Crest customer widget. A merchant's page includes it with one tag:
 *
 *   <script src="https://NODE/widget.js" data-tenant="TENANT" data-token="WEBSITE_TOKEN" async></script>
 *
 * Optional attributes: data-lang="zh|en" (default: the browser's language), data-open="true"
 * (open at once), data-identifier + data-identifier-hash (a verified customer: the merchant's user
 * id and its HMAC-SHA256 under the widget's identity secret, computed on the merchant's server).
 *
 * It opens a customer session (POST /v1/tenants/{t}/widget/sessions, resumed from localStorage so
 * a visitor stays the same customer), posts the customer's messages, follows the conversation on
 * its WebSocket (…/conversations/{id}/stream?after=SEQ: after a drop it reconnects from the last
 * seq it showed, so nothing is lost or shown twice), and asks for a rating when the conversation
 * is resolved. Everything lives in a shadow root, so the page's styles and the widget's do not mix.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__crestWidget) return;
  window.__crestWidget = true;
  var base = new URL(script.src, location.href).origin;
  var tenant = script.getAttribute('data-tenant');
  var websiteToken = script.getAttribute('data-token');
  var lang = script.getAttribute('data-lang') ||
    ((navigator.language || 'en').toLowerCase().indexOf('zh') === 0 ? 'zh' : 'en');
  var STORE = 'crest-widget:' + tenant;

  var WORDS = {
    en: {
      title: 'Customer service', placeholder: 'Type a message…', send: 'Send', sending: 'sending…',
      delivered: 'delivered', failed: 'not sent — tap to retry', typing: 'typing…',
      handoff: 'Connecting you to a human agent…', assigned: 'Agent {agent} is here to help.',
      resolved: 'This conversation is resolved.', rate: 'How did we do?', thanks: 'Thank you for your rating!',
      reconnecting: 'Reconnecting…', order: 'Order', open: 'Chat with us', close: 'Close',
      quick: ['Where is my order?', 'I want a refund', 'Talk to a human'],
      misconfigured: 'The chat is not available (missing tenant or token).'
    },
    zh: {
      title: '在线客服', placeholder: '输入消息…', send: '发送', sending: '发送中…',
      delivered: '已送达', failed: '发送失败，点击重试', typing: '对方正在输入…',
      handoff: '正在为您转接人工客服…', assigned: '客服 {agent} 为您服务。',
      resolved: '本次会话已结束。', rate: '请为本次服务评分', thanks: '感谢您的评价！',
      reconnecting: '正在重新连接…', order: '订单', open: '联系客服', close: '关闭',
      quick: ['我的订单到哪了', '我要退款', '我要转人工'],
      misconfigured: '客服暂不可用（缺少租户或令牌）。'
    }
  };
  var words = WORDS[lang] || WORDS.en;
  function say(key, vars) {
    return String(words[key]).replace(/\{(\w+)\}/g, function (_, name) { return (vars || {})[name] || ''; });
  }

  // ---- DOM -------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === 'text') node.textContent = attrs[key];
      else if (key.slice(0, 2) === 'on') node.addEventListener(key.slice(2), attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var host = el('div', { id: 'crest-widget' });
  var root = host.attachShadow({ mode: 'open' });
  root.appendChild(el('link', { rel: 'stylesheet', href: base + '/widget/widget.css' }));
  var launcher = el('button', { class: 'launcher', 'data-testid': 'widget-launcher', 'aria-label': say('open'), text: '💬' });
  var list = el('div', { class: 'messages', 'data-testid': 'widget-messages', role: 'log', 'aria-live': 'polite' });
  var typing = el('div', { class: 'typing', hidden: '', text: say('typing') });
  var banner = el('div', { class: 'banner', hidden: '' });
  var quick = el('div', { class: 'quick' });
  var input = el('textarea', { rows: '1', placeholder: say('placeholder'), 'data-testid': 'widget-input', 'aria-label': say('placeholder') });
  var sendButton = el('button', { class: 'send', type: 'submit', 'data-testid': 'widget-send', text: say('send') });
  var form = el('form', { class: 'composer' }, [input, sendButton]);
  var panel = el('section', { class: 'panel', hidden: '', 'data-testid': 'widget-panel' }, [
    el('header', {}, [el('strong', { text: say('title') }),
      el('button', { class: 'close', 'aria-label': say('close'), text: '×', onclick: function () { toggle(false); } })]),
    banner, list, typing, quick, form
  ]);
  root.appendChild(panel);
  root.appendChild(launcher);

  function toggle(open) {
    if (open) panel.removeAttribute('hidden'); else panel.setAttribute('hidden', '');
    launcher.toggleAttribute('hidden', open);
    if (open) { start(); input.focus(); }
  }
  launcher.addEventListener('click', function () { toggle(true); });

  // ---- state -----------------------------------------------------------------------------
  var session = null;        // {token, customer, expires_at_ms}
  var conversation = null;   // id of the open conversation
  var lastSeq = 0;           // the last event seq shown
  var socket = null;
  var pause = 500;
  var pending = {};          // channel message id → its bubble, until the journal confirms it
  var started = null;
  var typingTimer = null;
  var withAgent = false;     // an agent has the conversation (the bot does not answer then)

  function saved() {
    try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch (e) { return {}; }
  }
  function save(value) {
    try { localStorage.setItem(STORE, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function api(method, path, body, auth) {
    var headers = { 'content-type': 'application/json' };
    if (auth !== false && session) headers.authorization = 'Bearer ' + session.token;
    return fetch(base + '/v1/tenants/' + encodeURIComponent(tenant) + path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = { reason: text }; }
        if (!response.ok) {
          var error = new Error((parsed && parsed.reason) || ('HTTP ' + response.status));
          error.status = response.status;
          error.retryAfter = Number(response.headers.get('retry-after')) || 0;
          throw error;
        }
        return parsed;
      });
    });
  }

  /** Opens (or resumes) the customer's session, then shows the open conversation if any. */
  function start() {
    if (started) return started;
    if (!tenant || !websiteToken) {
      showBanner(say('misconfigured'));
      started = Promise.resolve();
      return started;
    }
    started = openSession().then(function () {
      return api('GET', '/customers/' + encodeURIComponent(session.customer) + '/conversation')
        .then(function (view) {
          conversation = view.id;
          view.messages.forEach(function (message) {
            if (!message.internal) addMessage(message.role, message.text, message.channel_message_id);
          });
          lastSeq = view.seq;
          withAgent = view.status === 'assigned';
          if (view.status === 'resolved' || view.status === 'closed') askRating();
          connect();
        }, function (error) {
          if (error.status !== 404) throw error;
        });
    }).catch(function (error) {
      started = null;
      showBanner(error.message);
    });
    return started;
  }

  function openSession() {
    var previous = saved();
    var body = { website_token: websiteToken };
    var identifier = script.getAttribute('data-identifier');
    if (identifier) {
      body.identifier = identifier;
      body.identifier_hash = script.getAttribute('data-identifier-hash');
    } else if (previous.token) {
      body.resume = previous.token;
    }
    return api('POST', '/widget/sessions', body, false).then(function (answer) {
      session = { token: answer.token, customer: answer.customer, expires_at_ms: answer.expires_at_ms };
      save(session);
    });
  }

  /** A fresh session when the current one is about to expire. */
  function ensureSession() {
    if (session && session.expires_at_ms - Date.now() > 60000) return Promise.resolve();
    return openSession();
  }

  // ---- messages --------------------------------------------------------------------------
  function addMessage(role, text, key) {
    var bubble = el('div', { class: 'message ' + role, 'data-testid': 'widget-message', 'data-role': role });
    bubble.appendChild(el('div', { class: 'text', text: text }));
    var order = role !== 'customer' && /(?:订单|order)\s*(?:号|no\.?|number|#)?\s*[:：#]?\s*([A-Za-z0-9-]{6,})/i.exec(text);
    if (order) {
      bubble.appendChild(el('div', { class: 'order-card', 'data-testid': 'widget-order' }, [
        el('span', { class: 'order-label', text: say('order') }), el('strong', { text: order[1] })
      ]));
    }
    if (key) bubble.setAttribute('data-key', key);
    list.appendChild(bubble);
    list.scrollTop = list.scrollHeight;
    return bubble;
  }

  function addNotice(text) {
    list.appendChild(el('div', { class: 'notice', text: text }));
    list.scrollTop = list.scrollHeight;
  }

  function setState(bubble, text, className) {
    var state = bubble.querySelector('.state') || bubble.appendChild(el('div', { class: 'state' }));
    state.textContent = text;
    state.className = 'state ' + (className || '');
    bubble.setAttribute('data-state', className || '');
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    if (withAgent) on = false;
    typing.toggleAttribute('hidden', !on);
    if (on) typingTimer = setTimeout(function () { showTyping(false); }, 15000);
  }

  function showBanner(text) {
    banner.textContent = text || '';
    banner.toggleAttribute('hidden', !text);
  }

  function send(text) {
    text = text.trim();
    if (!text) return;
    var key = 'w-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10);
    var bubble = addMessage('customer', text, key);
    pending[key] = bubble;
    setState(bubble, say('sending'), 'sending');
    showTyping(true);
    var post = function () {
      return ensureSession().then(function () {
        return api('POST', '/messages', { channel: 'web', customer: session.customer, id: key, text: text });
      }).then(function (ack) {
        setState(bubble, say('delivered'), 'delivered');
        if (ack.conversation_id !== conversation) {
          // A new conversation: follow it from its start (the stream replays this message too).
          conversation = ack.conversation_id;
          lastSeq = 0;
          rating = null;
          withAgent = false;
          connect();
        }
      }, function (error) {
        if (error && error.status === 429) {
          // Over the customer's message rate: keep the message and send it when the node allows.
          setTimeout(post, Math.max(1, error.retryAfter || 1) * 1000);
          return;
        }
        showTyping(false);
        setState(bubble, say('failed'), 'failed');
        bubble.onclick = function () { bubble.onclick = null; setState(bubble, say('sending'), 'sending'); post(); };
      });
    };
    start().then(post);
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = '';
    send(text);
  });
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  words.quick.forEach(function (text) {
    quick.appendChild(el('button', { type: 'button', class: 'chip', 'data-testid': 'widget-quick', text: text,
      onclick: function () { send(text); } }));
  });

  // ---- live ------------------------------------------------------------------------------
  function connect() {
    if (socket) { socket.onclose = null; socket.close(); }
    if (!conversation) return;
    var url = base.replace(/^http/, 'ws') + '/v1/tenants/' + encodeURIComponent(tenant) + '/conversations/' +
      encodeURIComponent(conversation) + '/stream?after=' + lastSeq + '&access_token=' + encodeURIComponent(session.token);
    var current = new WebSocket(url);
    socket = current;
    current.onopen = function () { pause = 500; showBanner(''); };
    current.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      apply(event.data || {});
    };
    current.onclose = function () {
      if (socket !== current) return;
      showBanner(say('reconnecting'));
      setTimeout(function () {
        if (socket === current) ensureSession().then(connect, connect);
      }, pause);
      pause = Math.min(pause * 2, 10000);
    };
  }

  function apply(data) {
    switch (data.type) {
      case 'customer_message_received':
        var bubble = pending[data.channel_message_id] ||
          list.querySelector('[data-key="' + CSS.escape(data.channel_message_id || '') + '"]');
        if (bubble) {
          delete pending[data.channel_message_id];
          setState(bubble, say('delivered'), 'delivered');
        } else {
          addMessage('customer', data.text, data.channel_message_id);
        }
        break;
      case 'bot_replied':
        showTyping(false);
        addMessage('bot', data.text);
        break;
      case 'agent_replied':
        if (data.internal) break;
        showTyping(false);
        addMessage('agent', data.text);
        break;
      case 'system_notice':
        showTyping(false);
        addMessage('system', data.text);
        break;
      case 'handoff_requested':
        addNotice(say('handoff'));
        break;
      case 'agent_assigned':
        withAgent = true;
        showTyping(false);
        addNotice(say('assigned', { agent: data.agent }));
        break;
      case 'resolved':
        withAgent = false;
        askRating();
        break;
      case 'csat_rated':
        rated();
        break;
      default:
        break;
    }
  }

  // ---- rating ----------------------------------------------------------------------------
  var rating = null;
  function askRating() {
    if (rating) return;
    var rated = conversation;
    rating = el('div', { class: 'rating', 'data-testid': 'widget-csat' }, [el('div', { text: say('resolved') + ' ' + say('rate') })]);
    var stars = el('div', { class: 'stars' });
    [1, 2, 3, 4, 5].forEach(function (score) {
      stars.appendChild(el('button', { type: 'button', class: 'star', 'data-testid': 'widget-csat-' + score,
        'aria-label': score + '/5', text: '★', onclick: function () {
          api('POST', '/conversations/' + encodeURIComponent(rated) + '/csat', { score: score }).then(rated_, function (error) {
            showBanner(error.message);
          });
        } }));
    });
    rating.appendChild(stars);
    list.appendChild(rating);
    list.scrollTop = list.scrollHeight;
  }
  function rated_() { rated(); }
  function rated() {
    if (!rating || rating.getAttribute('data-done')) return;
    rating.setAttribute('data-done', 'true');
    rating.textContent = say('thanks');
  }

  function mount() {
    document.body.appendChild(host);
    if (script.getAttribute('data-open') === 'true') toggle(true);
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
