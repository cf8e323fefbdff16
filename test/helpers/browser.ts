// A real headless Chromium for the page tests: Debian's /usr/bin/chromium driven by playwright-core (which downloads no browser).
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The browser the tests drive: PERSONAFLOW_CHROMIUM, else the system's package (`apt-get install chromium`). */
export const CHROMIUM = process.env.PERSONAFLOW_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or undefined when they can. On CI (CI=true) a missing browser
 * is not a reason to skip: .ci/run installs it, so the tests run and fail loudly instead.
 */
export const browserMissing: string | undefined = existsSync(CHROMIUM) || process.env.CI === 'true' ? undefined : `no Chromium at ${CHROMIUM}: apt-get install chromium, or set PERSONAFLOW_CHROMIUM`;

/** Flags for a sandboxed machine without network: no GPU, no QUIC, no background calls home. */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** Headless Chromium in a fresh profile (playwright makes a new temporary user data directory per launch). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/**
 * The little of the DOM that the tests' page functions touch, typed here: the tests get no DOM library,
 * which would leak into the type checking of src/ (one program covers both).
 * In a page function: `(globalThis as unknown as PageWindow).document`.
 */
export interface PageNode {
  readonly textContent: string | null;
  readonly tagName: string;
  readonly dataset: Readonly<Record<string, string | undefined>>;
  readonly width: number;
  readonly height: number;
  getAttributeNames(): string[];
  closest(selector: string): PageNode | null;
  querySelectorAll(selector: string): Iterable<PageNode> & { readonly length: number };
}
export interface PageWindow {
  readonly document: PageNode & { readonly body: PageNode; querySelector(selector: string): PageNode | null };
  /** What injected markup would set if it ran. */
  readonly __pwned?: unknown;
}
