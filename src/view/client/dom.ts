// Building the page's elements: every text goes in as a text node, never as markup, so nothing a model or a persona file wrote can become HTML.

/** What an element may contain: text (always a text node), elements, or nothing. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

export interface Props {
  readonly class?: string;
  readonly title?: string;
  /** Internal links only (`#...`): no other URL is ever made from data. */
  readonly href?: `#${string}`;
  readonly role?: string;
  readonly type?: string;
  readonly value?: string;
  readonly placeholder?: string;
  readonly for?: string;
  readonly id?: string;
  readonly open?: boolean;
  readonly disabled?: boolean;
  readonly dataset?: Readonly<Record<string, string>>;
  readonly ariaLabel?: string;
  readonly onClick?: (event: Event) => void;
  readonly onChange?: (event: Event) => void;
  readonly onInput?: (event: Event) => void;
}

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (typeof child === 'string' || typeof child === 'number') parent.appendChild(document.createTextNode(String(child)));
  else if (child instanceof Node) parent.appendChild(child);
  else for (const item of child) append(parent, item);
}

/**
 * An element with properties and children. Texts become text nodes (`document.createTextNode`), and
 * attributes are set only from the fixed list of Props (no `on...` attribute, no URL but `#...`), so the
 * page never parses a string from the data as HTML.
 *
 * @example
 * h('p', { class: 'reply' }, '<script>alert(1)</script>') // a paragraph that shows those characters
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class !== undefined) element.className = props.class;
  if (props.title !== undefined) element.title = props.title;
  if (props.href !== undefined && props.href.startsWith('#')) element.setAttribute('href', props.href);
  if (props.role !== undefined) element.setAttribute('role', props.role);
  if (props.type !== undefined) element.setAttribute('type', props.type);
  if (props.value !== undefined) (element as HTMLInputElement).value = props.value;
  if (props.placeholder !== undefined) element.setAttribute('placeholder', props.placeholder);
  if (props.for !== undefined) element.setAttribute('for', props.for);
  if (props.id !== undefined) element.id = props.id;
  if (props.open === true) element.setAttribute('open', '');
  if (props.disabled === true) element.setAttribute('disabled', '');
  if (props.ariaLabel !== undefined) element.setAttribute('aria-label', props.ariaLabel);
  for (const [key, value] of Object.entries(props.dataset ?? {})) element.dataset[key] = value;
  if (props.onClick !== undefined) element.addEventListener('click', props.onClick);
  if (props.onChange !== undefined) element.addEventListener('change', props.onChange);
  if (props.onInput !== undefined) element.addEventListener('input', props.onInput);
  append(element, children);
  return element;
}

/** Replaces an element's children. */
export function replace(element: Element, ...children: Child[]): void {
  element.replaceChildren();
  append(element, children);
}

/** A select whose options are (value, label) pairs, built with `new Option` (text, never markup). */
export function select(name: string, choices: readonly (readonly [string, string])[], selected: string | undefined, onChange: (value: string) => void): HTMLSelectElement {
  const element = h('select', { ariaLabel: name, dataset: { filter: name }, onChange: () => onChange(element.value) });
  for (const [value, label] of choices) element.add(new Option(label, value, false, value === (selected ?? '')));
  return element;
}

/** 12,345 */
export const count = (n: number): string => n.toLocaleString('en');

/** $0.0123 */
export const usd = (n: number): string => `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`;
