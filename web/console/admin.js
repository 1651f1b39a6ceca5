// The admin pages (filled in by a later step).
import { html } from '/console/htm-preact.js';
export function Admin() {
  return html`<main class="page">…</main>`;
}
