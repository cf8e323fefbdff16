// The conversation pane: the turns as a chat (a noised user turn beside its clean version), the persona, the judge, usage and cost, rejected replies, raw metadata.
import type { ConversationView, MessageView } from '../api.js';
import { count, h, usd, type Child } from './dom.js';

const badge = (text: string, kind = ''): HTMLElement => h('span', { class: `badge ${kind}`.trim() }, text);

function message(m: MessageView): HTMLElement {
  const head = h('div', { class: 'msg-head' }, h('span', { class: 'role' }, m.role), m.turn === null ? null : h('span', { class: 'turn' }, `turn ${m.turn}`), m.noise.map((s) => badge(s, 'noise')));
  if (m.clean !== null) {
    return h(
      'div',
      { class: `msg ${m.role === 'user' ? 'user' : 'assistant'} noised`, dataset: { role: m.role } },
      head,
      h(
        'div',
        { class: 'versions' },
        h('div', { class: 'version noisy' }, h('div', { class: 'version-label' }, 'sent (noised)'), h('div', { class: 'text', dataset: { part: 'noisy' } }, m.content)),
        h('div', { class: 'version clean' }, h('div', { class: 'version-label' }, 'clean (what the user meant)'), h('div', { class: 'text', dataset: { part: 'clean' } }, m.clean)),
      ),
    );
  }
  return h('div', { class: `msg ${m.role === 'user' ? 'user' : m.role === 'assistant' ? 'assistant' : 'other'}`, dataset: { role: m.role } }, head, h('div', { class: 'text' }, m.content));
}

const section = (title: string, ...children: Child[]): HTMLElement => h('section', { class: 'pane-section' }, h('h3', {}, title), ...children);

function table(head: readonly string[], rows: readonly (readonly Child[])[]): HTMLElement {
  return h('table', { class: 'small' }, h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

/** The pane for one conversation. Every text in it is a text node. */
export function conversationPane(view: ConversationView): HTMLElement {
  const quality = view.quality;
  return h(
    'article',
    { class: 'conversation', dataset: { at: String(view.at) } },
    h('h2', { class: 'conversation-id' }, view.id),
    h(
      'div',
      { class: 'badges' },
      view.n > 0 ? badge(`#${count(view.n)}`) : null,
      badge(view.model, 'model'),
      badge(`${view.turns} turns`),
      badge(view.endReason === null ? 'end reason not recorded' : `end: ${view.endReason}`, 'end'),
      view.round === null ? null : badge(`supplement round ${view.round}`),
      quality?.verdict === null || quality === null ? null : badge(`verdict: ${quality.verdict}`, 'verdict'),
      view.messages.some((m) => m.clean !== null) ? badge('noised', 'noise') : null,
    ),
    section(
      'Persona',
      h('p', {}, h('strong', { class: 'persona-id' }, view.persona.id)),
      view.persona.features.length === 0 ? null : h('dl', { class: 'features' }, view.persona.features.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      view.persona.systemPrompt === null ? null : h('p', { class: 'system-prompt' }, view.persona.systemPrompt),
    ),
    view.originalQuery === null ? null : section('Original query', h('p', { class: 'text' }, view.originalQuery)),
    section('Conversation', h('div', { class: 'chat' }, view.messages.map(message))),
    view.rejections.length === 0 && view.guard.length === 0
      ? null
      : section(
          'Rejected replies',
          view.guard.length === 0 ? null : h('p', {}, 'guard counts: ', view.guard.map(([reason, n]) => badge(`${reason}: ${n}`, 'reason'))),
          view.rejections.length === 0
            ? h('p', { class: 'note' }, 'no guard-rejections.ndjson lines for this conversation')
            : h('ol', { class: 'rejections' }, view.rejections.map((r) => h('li', { class: 'rejection' }, badge(r.reason, 'reason'), r.turn === null ? null : h('span', { class: 'turn' }, ` turn ${r.turn}`), r.role === null ? null : h('span', { class: 'turn' }, ` ${r.role}`), h('div', { class: 'text' }, r.text)))),
        ),
    quality === null
      ? null
      : section('Judge', quality.verdict === null ? null : h('p', {}, 'verdict: ', h('strong', {}, quality.verdict)), quality.scores.length === 0 ? null : table(['score', 'value'], quality.scores.map(([name, value]) => [name, String(value)])), quality.tags.length === 0 ? null : h('p', {}, quality.tags.map((t) => badge(t)))),
    section(
      'Usage and cost',
      view.usage.length === 0 ? h('p', { class: 'note' }, 'no usage recorded') : table(['module', 'calls', 'input tokens', 'output tokens', 'cost'], view.usage.map((u) => [u.name, count(u.calls), count(u.input), count(u.output), u.cost === null ? '—' : usd(u.cost)])),
      h('p', { class: 'note' }, view.cost.usd === null ? '' : `${usd(view.cost.usd)} at the configured prices`, view.cost.unpriced.length === 0 ? '' : `; not priced: ${view.cost.unpriced.join(', ')}`, `; user simulator: ${view.userModel}`),
    ),
    h('details', { class: 'pane-section' }, h('summary', {}, 'metadata (JSON)'), h('pre', { class: 'json' }, JSON.stringify(view.metadata, null, 2))),
  );
}
