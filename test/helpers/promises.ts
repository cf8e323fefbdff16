// Promise helpers for tests that watch settlement without awaiting.

/** Tracks whether a promise has settled, and how, without leaving a rejection unhandled. */
export function track(promise: Promise<void>) {
  const state: { status: 'pending' | 'fulfilled' | 'rejected'; error?: unknown } = { status: 'pending' };
  promise.then(
    () => (state.status = 'fulfilled'),
    (error: unknown) => {
      state.status = 'rejected';
      state.error = error;
    },
  );
  return state;
}
