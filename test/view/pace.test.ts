// Pacer: background work runs freely while nobody is served, waits while a request is in flight, and goes on for a request that waits for it.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/view/pace.js';

/** Whether the promise has settled after the event loop turned a few times. */
async function settled(promise: Promise<void> | undefined): Promise<boolean> {
  if (promise === undefined) return true;
  let done = false;
  void promise.then(() => (done = true));
  await sleep(40);
  return done;
}

describe('Pacer', () => {
  it('costs nothing within a slice', () => {
    const pacer = new Pacer(60_000, 0, 0);
    expect(pacer.gate()).toBeUndefined();
    expect(pacer.busy).toBe(false);
  });

  it('holds gated work while a request is in flight, and lets it go when the request ends', async () => {
    const pacer = new Pacer(0, 0, 0);
    pacer.begin();
    const waiting = pacer.gate();
    expect(await settled(waiting)).toBe(false);
    pacer.end();
    expect(await settled(waiting)).toBe(true);
  });

  it('lets urgent work through a busy server', async () => {
    const pacer = new Pacer(0, 0, 0);
    pacer.begin();
    expect(await settled(pacer.gate(() => true))).toBe(true);
    pacer.end();
  });

  it('holds work back at the start until the quiet start is over', async () => {
    const pacer = new Pacer(0, 0, 60_000);
    expect(pacer.busy).toBe(true);
    expect(await settled(pacer.gate())).toBe(false);
  });
});
