// RedisLimits: one model's rate buckets, circuit breaker and pauses kept in Redis, so every worker of a run shares them.
import type { Redis } from 'ioredis';
import { FatalError } from '../errors.js';
import { BURST_MS } from '../limits/bucket.js';
import { SAFETY, type CallResult } from '../limits/limiter.js';
import { LONG_RETRY_AFTER_MS } from '../limits/pause.js';
import type { ConfiguredLimits, SharedLimits, SharedLimitsFactory } from '../limits/shared.js';
import { stableId } from '../rng.js';

/** A half-open breaker lets one probe through; a probe whose worker died frees the slot after this long. */
export const PROBE_MS = 30_000;
/** A model's shared state expires this long after its last call, so an old run's breaker does not haunt a new one. */
const IDLE_TTL_MS = 3_600_000;

/**
 * The time: Redis's own clock (every worker, on any machine, reads the same one), or `ARGV[n]` when a
 * test drives virtual time.
 */
const NOW = (n: number): string => `
local now = tonumber(ARGV[${n}])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end`;

/**
 * Admission, atomically (the same arithmetic as RateBucket, CircuitBreaker and ModelPause, in one
 * place for all workers): the breaker open → wait until its cool-down ends, or -1 past give-up; a
 * pause → wait it out; half-open → one probe at a time; then both buckets (GCRA: `*_clear` is when
 * everything taken is paid back; a call may go BURST_MS early) → wait, or take the call's share and go.
 * ARGV: tokens, rpm, tpm (0: unknown), give-up ms, probe ms, idle ttl, [now].
 * Returns {wait ms (0: go, -1: dead), ms the breaker has been open}.
 */
const ADMIT = `
local key = KEYS[1]
local tokens = tonumber(ARGV[1])
local rpm_cfg = tonumber(ARGV[2])
local tpm_cfg = tonumber(ARGV[3])
local give_up = tonumber(ARGV[4])
local probe_ms = tonumber(ARGV[5])
${NOW(7)}
local burst = ${BURST_MS}
local safety = ${SAFETY}
local h = redis.call('HMGET', key, 'req_clear', 'tok_clear', 'rpm', 'tpm', 'state', 'open_since', 'open_until', 'probe_until', 'pause_until', 'last_ok')
if not h[10] then redis.call('HSET', key, 'last_ok', now) end
redis.call('PEXPIRE', key, tonumber(ARGV[6]))
local req_clear = tonumber(h[1]) or now
local tok_clear = tonumber(h[2]) or now
local rpm = rpm_cfg
if rpm <= 0 then rpm = tonumber(h[3]) or 0 end
local tpm = tpm_cfg
if tpm <= 0 then tpm = tonumber(h[4]) or 0 end
local state = h[5] or 'closed'
if state == 'open' then
  local open_since = tonumber(h[6]) or now
  if now - open_since >= give_up then return {-1, math.floor(now - open_since)} end
  local open_until = tonumber(h[7]) or 0
  if now < open_until then return {math.ceil(open_until - now), 0} end
  state = 'half'
  redis.call('HSET', key, 'state', 'half')
end
local pause_until = tonumber(h[9]) or 0
if now < pause_until then return {math.ceil(pause_until - now), 0} end
local probe_until = tonumber(h[8]) or 0
if state == 'half' and now < probe_until then return {math.min(math.ceil(probe_until - now), 250), 0} end
local wait = 0
if rpm > 0 then wait = math.max(wait, req_clear - burst - now) end
if tpm > 0 then wait = math.max(wait, tok_clear - burst - now) end
if wait > 1e-6 then return {math.ceil(wait), 0} end
if rpm > 0 then redis.call('HSET', key, 'req_clear', tostring(math.max(req_clear, now - burst) + 60000 / (rpm * safety))) end
if tpm > 0 then redis.call('HSET', key, 'tok_clear', tostring(math.max(tok_clear, now - burst) + tokens * 60000 / (tpm * safety))) end
if state == 'half' then redis.call('HSET', key, 'probe_until', now + probe_ms) end
return {0, 0}
`;

/**
 * What a call did: the token bucket corrected by its real cost, limits announced by x-ratelimit headers
 * learnt, a pause for `remaining: 0` or a long Retry-After, the breaker told of a success or a failure.
 * ARGV: ok, refused, failing, retry-after ms, token delta, limit requests, limit tokens, pause ms,
 * threshold, first cool-down ms, tpm configured, long retry-after ms, [now].
 */
const REPORT = `
local key = KEYS[1]
local ok = tonumber(ARGV[1])
local refused = tonumber(ARGV[2])
local failing = tonumber(ARGV[3])
local retry_after = tonumber(ARGV[4])
local delta = tonumber(ARGV[5])
local limit_req = tonumber(ARGV[6])
local limit_tok = tonumber(ARGV[7])
local pause_ms = tonumber(ARGV[8])
local threshold = tonumber(ARGV[9])
local first_cooldown = tonumber(ARGV[10])
local tpm_cfg = tonumber(ARGV[11])
local long_retry = tonumber(ARGV[12])
${NOW(13)}
local burst = ${BURST_MS}
local safety = ${SAFETY}
local h = redis.call('HMGET', key, 'tok_clear', 'tpm', 'state', 'last_ok', 'open_until', 'cooldown', 'pause_until', 'rpm')
local tpm = tpm_cfg
if tpm <= 0 then tpm = tonumber(h[2]) or 0 end
if tpm > 0 and delta ~= 0 and h[1] then
  redis.call('HSET', key, 'tok_clear', tostring(math.max(now - burst, tonumber(h[1]) + delta * 60000 / (tpm * safety))))
end
if limit_req > 0 and not h[8] then redis.call('HSET', key, 'rpm', limit_req) end
if limit_tok > 0 and not h[2] then redis.call('HSET', key, 'tpm', limit_tok) end
local pause_until = tonumber(h[7]) or 0
local function pause(untilt)
  if untilt > pause_until then
    pause_until = untilt
    redis.call('HSET', key, 'pause_until', tostring(untilt))
  end
end
if pause_ms > 0 then pause(now + pause_ms) end
if refused == 1 and retry_after >= long_retry then pause(now + retry_after) end
local state = h[3] or 'closed'
local cooldown = tonumber(h[6]) or first_cooldown
if ok == 1 then
  redis.call('HSET', key, 'fails', 0, 'last_ok', tostring(now), 'probe_until', 0)
  if state ~= 'closed' then redis.call('HSET', key, 'state', 'closed', 'cooldown', first_cooldown) end
elseif refused == 1 or failing == 1 then
  local fails = redis.call('HINCRBY', key, 'fails', 1)
  local last_ok = tonumber(h[4]) or now
  if state == 'half' or (state == 'closed' and fails >= threshold and now - last_ok >= first_cooldown) then
    if state == 'closed' then redis.call('HSET', key, 'open_since', tostring(now)) end
    redis.call('HSET', key, 'state', 'open', 'open_until', tostring(math.max(tonumber(h[5]) or 0, now + cooldown)), 'cooldown', math.min(60000, cooldown * 2), 'probe_until', 0)
  end
end
return 0
`;

interface LimitCommands {
  personaflowAdmit(key: string, ...args: (string | number)[]): Promise<[number, number]>;
  personaflowReport(key: string, ...args: (string | number)[]): Promise<number>;
}

/** Registers the two scripts on a connection (EVALSHA, loaded on first use). */
function commands(redis: Redis): LimitCommands {
  const known = redis as unknown as Partial<LimitCommands>;
  if (known.personaflowAdmit === undefined) {
    redis.defineCommand('personaflowAdmit', { numberOfKeys: 1, lua: ADMIT });
    redis.defineCommand('personaflowReport', { numberOfKeys: 1, lua: REPORT });
  }
  return redis as unknown as LimitCommands;
}

export interface RedisLimitsOptions {
  /** Key prefix in Redis (default `personaflow:limits:`). */
  readonly prefix?: string;
  /** Virtual time for tests: passed to the scripts instead of Redis's clock. */
  readonly clock?: () => number;
}

/**
 * One model's SharedLimits in Redis. Every worker with the same model, endpoint and key (the `key` of
 * the factory) reads and writes one hash, in scripts that run atomically, so N workers together let
 * out what one process would: at 95% of a configured rpm/tpm, spaced, with the same breaker and pauses.
 * Time is Redis's clock, so machines whose clocks disagree still share one schedule.
 */
export class RedisLimits implements SharedLimits {
  readonly #redis: LimitCommands;
  readonly #key: string;
  readonly #limits: ConfiguredLimits;
  readonly #clock: (() => number) | undefined;

  constructor(
    redis: Redis,
    key: string,
    readonly name: string,
    limits: ConfiguredLimits,
    options: RedisLimitsOptions = {},
  ) {
    this.#redis = commands(redis);
    this.#key = `${options.prefix ?? 'personaflow:limits:'}${stableId(key, 24)}`;
    this.#limits = limits;
    this.#clock = options.clock;
  }

  #now(): (string | number)[] {
    return this.#clock === undefined ? [] : [this.#clock()];
  }

  async admit(tokens: number): Promise<number> {
    const giveUp = this.#limits.breakerGiveUpMs ?? 120_000;
    const [wait, openFor] = await this.#redis.personaflowAdmit(this.#key, tokens, this.#limits.rpm ?? 0, this.#limits.tpm ?? 0, giveUp, PROBE_MS, IDLE_TTL_MS, ...this.#now());
    if (wait < 0) throw new FatalError(`${this.name}: every call failed for ${Math.round(openFor / 1000)} s (429s, 5xx or timeouts) across the workers and probes did not get through; stopping`);
    return wait;
  }

  /** Resolves once Redis has counted it (callers need not wait: `report` is fire-and-forget). */
  reported(result: CallResult, estimated: number): Promise<number> {
    const info = result.rateLimit;
    const pauses = [info?.remainingRequests !== undefined && info.remainingRequests <= 0 ? info.resetRequestsMs : undefined, info?.remainingTokens !== undefined && info.remainingTokens <= 0 ? info.resetTokensMs : undefined].filter((ms): ms is number => ms !== undefined && ms > 0);
    return this.#redis.personaflowReport(
      this.#key,
      result.ok ? 1 : 0,
      result.overloaded === true ? 1 : 0,
      result.failing === true ? 1 : 0,
      result.retryAfterMs ?? 0,
      result.tokens === undefined ? 0 : result.tokens - estimated,
      info?.limitRequests ?? 0,
      info?.limitTokens ?? 0,
      Math.max(0, ...pauses),
      this.#limits.breakerThreshold ?? 8,
      this.#limits.breakerCooldownMs ?? 5000,
      this.#limits.tpm ?? 0,
      LONG_RETRY_AFTER_MS,
      ...this.#now(),
    );
  }

  report(result: CallResult, estimated: number): void {
    // A report lost with a dying connection costs one sample of the breaker's count, nothing more.
    this.reported(result, estimated).catch(() => undefined);
  }
}

/** The factory buildModels takes: each model's RedisLimits on one connection. */
export function redisLimits(redis: Redis, options: RedisLimitsOptions = {}): SharedLimitsFactory {
  return (key, name, limits) => new RedisLimits(redis, key, name, limits, options);
}
