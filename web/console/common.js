// Small pieces the console pages share: rendering of reasons, emotions and times, an error line,
// and the conversion of a conversation's events into the lines of its history.

import { html } from '/console/htm-preact.js';
import { t } from '/console/i18n.js';

/** A handoff reason (`"customer_request"` or `{"escalation": "…"}`) as text. */
export function reasonText(reason) {
  if (!reason) return '';
  if (typeof reason === 'string') return reason.replace(/_/g, ' ');
  const [kind, detail] = Object.entries(reason)[0] || [];
  return kind ? `${kind.replace(/_/g, ' ')}: ${detail}` : '';
}

/** An emotion `{label, score}` as text. */
export function emotionText(emotion) {
  if (!emotion) return '';
  if (typeof emotion === 'string') return emotion;
  return emotion.score != null ? `${emotion.label} ${Math.round(emotion.score * 100)}%` : emotion.label;
}

/** `HH:MM` of an RFC 3339 time. */
export function clock(at) {
  if (!at) return '';
  const time = new Date(at);
  return `${String(time.getHours()).padStart(2, '0')}:${String(time.getMinutes()).padStart(2, '0')}`;
}

/** Seconds as `1m 05s`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function ErrorLine({ error }) {
  return error ? html`<p class="error" role="alert">${error.message || String(error)}</p>` : null;
}

/**
 * The lines of a conversation's history from its events (`EventView`s): messages with their
 * role, and one-line notices for handoffs, assignments, resolution, closing and ratings.
 */
export function historyLines(events) {
  const lines = [];
  for (const event of events) {
    const data = event.data || {};
    const base = { seq: event.seq, at: event.at };
    switch (data.type) {
      case 'customer_message_received':
        lines.push({ ...base, role: 'customer', text: data.text, channel: data.channel });
        break;
      case 'bot_replied':
        lines.push({ ...base, role: 'bot', text: data.text, intent: data.intent, confidence: data.confidence,
          citations: data.citations || [], emotion: data.emotion });
        break;
      case 'agent_replied':
        lines.push({ ...base, role: data.internal ? 'note' : 'agent', text: data.text, agent: data.agent });
        break;
      case 'system_notice':
        lines.push({ ...base, role: 'system', text: data.text });
        break;
      case 'handoff_requested':
        lines.push({ ...base, role: 'event', text: t('msg.handoff', { reason: reasonText(data.reason) }) });
        break;
      case 'agent_assigned':
        lines.push({ ...base, role: 'event', text: t('msg.assigned', { agent: data.agent }) });
        break;
      case 'resolved':
        lines.push({ ...base, role: 'event', text: t('msg.resolved') });
        break;
      case 'closed':
        lines.push({ ...base, role: 'event', text: t('msg.closed', { reason: data.reason }) });
        break;
      case 'csat_rated':
        lines.push({ ...base, role: 'event', text: t('msg.csat', { score: data.score }) });
        break;
      default:
        break;
    }
  }
  return lines;
}
