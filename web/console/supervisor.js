// The supervisor view (filled in by a later step).
import { html } from '/console/htm-preact.js';
export function Supervisor() {
  return html`<main class="page">…</main>`;
}
