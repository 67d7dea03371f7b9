/**
 * Every limit Parallax enforces, in one place: its default, why it exists, and what happens when a
 * peer exceeds it. The README's limits table restates them; it is written by hand, and
 * test/docs.test.ts checks that it names every limit here with its default (test/transport/
 * limits.test.ts checks that each doc below states a default, a reason and an effect).
 *
 * Invariant: a `Limits` object that reached a transport or session went through `resolveLimits`,
 * so every field is a positive safe integer (`idleTimeoutMs` may also be 0, meaning off).
 *
 * Tests: test/transport/limits.test.ts, test/docs.test.ts
 */

import { ErrorCode, ParallaxError } from "./errors.js";

export interface Limits {
  // --- transport ---------------------------------------------------------------------------

  /**
   * Largest Cap'n Proto message accepted, in bytes, segment table included. Default 8 MiB.
   * Why: a peer must not make us buffer unbounded input. It is the ws `maxPayload`, and on TCP it is
   * checked from the segment table before any of the body is buffered.
   * Exceeded: the connection closes (WebSocket code 1009) with `PARALLAX_ERR_LIMIT`.
   */
  maxMessageBytes: number;

  /**
   * Most segments one message may declare. Default 512.
   * Why: the segment table is read before the size is known; this bounds it, and bounds the work of
   * building a segment list for the decoder.
   * Exceeded: the connection closes (WebSocket code 1009) with `PARALLAX_ERR_LIMIT`.
   */
  maxSegments: number;

  /**
   * Outbound bytes queued for one connection that the peer has not yet taken, the current tick's
   * batch included. Default 16 MiB.
   * Why: a slow or stalled reader must not make us buffer without bound.
   * Exceeded: that connection is dropped at once (local close code 1008, `PARALLAX_ERR_LIMIT`,
   * reason naming `maxOutboundBytes`); other connections are unaffected.
   */
  maxOutboundBytes: number;

  /**
   * Open connections per listener (a TCP listener or one WebSocket attachment). Default 10_000.
   * Why: each connection costs sockets, buffers and tables; the cap keeps a flood from exhausting
   * them.
   * Exceeded: WebSocket upgrades are refused with HTTP 503 before the handshake (the Node client
   * rejects with `PARALLAX_ERR_LIMIT`); TCP connections are closed as soon as they are accepted.
   */
  maxConnections: number;

  /**
   * Milliseconds a connection may stay silent, 0 for no limit. Default 60_000.
   * Why: dead peers (a laptop lid closed, a NAT that forgot us) otherwise hold resources forever.
   * WebSocket: a ping every `idleTimeoutMs / 2`; a connection that sends nothing, not even a pong,
   * for `idleTimeoutMs` is dropped. TCP: keep-alive is enabled and a connection from which no byte
   * arrives for `idleTimeoutMs` is dropped (Cap'n Proto has no ping, so a TCP peer that may be quiet
   * longer should raise this or set 0). Paused connections are not timed.
   * Exceeded: the connection is dropped (local close code 1006, `PARALLAX_ERR_DISCONNECTED`).
   */
  idleTimeoutMs: number;

  // --- rpc (enforced by the RPC engine, not the transport) ----------------------------------

  /**
   * Words the decoder may traverse in one message, counting data reached through several pointers
   * every time it is reached. Default 8 Mi words (64 MiB).
   * Why: stops amplification attacks in which many pointers share one large object.
   * Exceeded: the message is rejected and the connection aborted with `PARALLAX_ERR_LIMIT`.
   */
  maxTraversalWords: number;

  /**
   * Deepest pointer nesting the decoder follows. Default 64.
   * Why: bounds recursion, so a deeply nested message cannot exhaust the stack.
   * Exceeded: the message is rejected and the connection aborted with `PARALLAX_ERR_LIMIT`.
   */
  maxNestingDepth: number;

  /**
   * Capabilities a peer may hold from us on one connection (our export table). Default 10_000.
   * Why: each export pins an object in memory until the peer releases it.
   * Exceeded: the call that would hand out one more fails with `PARALLAX_ERR_LIMIT`.
   */
  maxExports: number;

  /**
   * Capabilities we accept from a peer on one connection (our import table). Default 10_000.
   * Why: each import is a table entry we keep until we release it.
   * Exceeded: the connection is aborted with `PARALLAX_ERR_LIMIT`.
   */
  maxImports: number;

  /**
   * Calls a peer may have in flight to us on one connection. Default 1024.
   * Why: back-pressure; unanswered calls hold memory and work.
   * Exceeded: we stop reading that connection (transport `pause()`) until answers drain below it.
   * A peer that leaves more than `FINISH_SLACK` (4) × this many answered calls *whose results hold
   * capabilities* without a Finish is aborted with `PARALLAX_ERR_LIMIT` (those results would
   * otherwise be kept forever; answers without capabilities are bounded by `maxUnfinishedAnswers`).
   */
  maxQuestionsInFlight: number;

  /**
   * Answers a peer may leave unfinished on one connection: calls it made that we answered (or are
   * still running) and for which its Finish has not arrived. Default 100_000.
   * Why: an honest peer that sends a burst of calls finishes them only after it has read our
   * Returns, which can queue behind its own burst; a peer that never sends Finish must still be
   * stopped. An answer whose results hold no capability (or that failed) is kept from its Return to
   * its Finish as a tombstone of about 55 bytes (measured; kept whole it costs about 1.5 KB), so
   * the default holds about what the `FINISH_SLACK` × `maxQuestionsInFlight` whole answers can.
   * Exceeded: the connection is aborted with `PARALLAX_ERR_LIMIT` when the peer's next call
   * arrives (the reason names `maxUnfinishedAnswers`).
   */
  maxUnfinishedAnswers: number;

  // --- login (enforced by the login layer, across every connection of the broker) -----------
  /**
   * Calls one identity may have in flight through everything its logins were handed, summed over
   * all its connections. Default 256.
   * Why: one user must not take the whole server's work, however many connections they open.
   * Exceeded: the call fails with `PARALLAX_ERR_QUOTA` (kind overloaded); the connection stays.
   */
  maxIdentityCallsInFlight: number;
  /**
   * Capabilities one identity's logins may hold at once, summed over all its connections.
   * Default 20_000.
   * Why: each pins server memory; per-connection limits alone multiply with connections.
   * Exceeded: the call that would hand out one more fails with `PARALLAX_ERR_QUOTA`.
   */
  maxIdentityExports: number;
  /**
   * Logins (Identity capabilities) one connection may hold at once. Default 32.
   * Why: each login is a session the broker keeps until it is released, revoked or disconnected.
   * Exceeded: the login fails with `PARALLAX_ERR_QUOTA`; the connection stays.
   */
  maxLoginsPerConnection: number;
  /**
   * Perspectives one login may have attached at once. Default 64.
   * Why: each attachment is kept (and its service told) until it is released or detached.
   * Exceeded: `attach` fails with `PARALLAX_ERR_QUOTA`.
   */
  maxAttachmentsPerLogin: number;
  /**
   * Failed logins a name or an address may make before delays start. Default 5.
   * Why: guessing passwords online must be slow.
   * Exceeded: further attempts for that name or from that address fail with
   * `PARALLAX_ERR_RATE_LIMITED` for `loginDelayBaseMs`, doubling with every further failure up
   * to `loginDelayMaxMs`; the message says when to retry. A success clears the name's count.
   */
  loginFreeFailures: number;
  /**
   * The first delay after `loginFreeFailures` failures, in ms. Default 1000.
   * Why: the delay doubles from here, so guessing slows down quickly.
   * Exceeded: see `loginFreeFailures`.
   */
  loginDelayBaseMs: number;
  /**
   * The longest delay, in ms. Default 900_000 (15 minutes).
   * Why: a locked-out user must be able to try again within a bounded time, and the throttle
   * forgets a name or address after this long without failures.
   * Exceeded: delays stop growing at this value.
   */
  loginDelayMaxMs: number;
  /**
   * Milliseconds an AuthChallenger stays usable. Default 60_000.
   * Why: a challenge must not be answerable forever.
   * Exceeded: `respond` fails with `PARALLAX_ERR_AUTH_FAILED` and the challenger is burnt.
   */
  challengeTimeoutMs: number;
  /**
   * Login challenges one connection may hold unanswered and unexpired at once. Default 4.
   * Why: a challenger is made before anyone is authenticated and costs memory until it is
   * answered or expires; this bounds what one unauthenticated connection can make the server keep.
   * Exceeded: `login` / `loginWithKey` fail with `PARALLAX_ERR_QUOTA` until one is answered or
   * expires (expired challengers drop their state at once).
   */
  maxChallengersPerConnection: number;
  /**
   * Connections from one address (IPv4, or IPv6 /64) that have not logged in yet. Default 64.
   * Why: with `maxChallengersPerConnection` it bounds what one address can make the server keep
   * before authenticating; the connection cap alone is server-wide.
   * Exceeded: the new connection is closed at once (code 1008) with `PARALLAX_ERR_QUOTA`; a
   * connection stops counting once it has logged in.
   */
  maxPreLoginConnectionsPerAddress: number;
  /**
   * Device-key requests that may wait for approval per user name. Default 5.
   * Why: each is a stored row and a line in the owner's approval list.
   * Exceeded: a further unregistered key's login fails with `PARALLAX_ERR_RATE_LIMITED`; it is
   * never answered with another device's request.
   */
  maxPendingDevicesPerName: number;
  /**
   * API keys one identity may hold. Default 32.
   * Why: each is a stored credential; a stolen password login must not mint them without bound.
   * Exceeded: `createApiKey` fails with `PARALLAX_ERR_QUOTA`; revoke one first.
   */
  maxApiKeysPerIdentity: number;
  /**
   * Unexpired one-time passwords one identity may hold. Default 8.
   * Why: each is a stored credential row.
   * Exceeded: `createOtp` fails with `PARALLAX_ERR_QUOTA` until one is used or expires.
   */
  maxOtpsPerIdentity: number;
  /**
   * Resume tokens one identity may hold (about one per device). Default 32.
   * Why: each is a stored credential row; logins issue them routinely.
   * Exceeded: issuing one more drops the identity's token that expires soonest (that device must
   * log in again).
   */
  maxResumeTokensPerIdentity: number;
  /**
   * How long a resume token lives, in ms; resuming rotates it but never extends it.
   * Default 1_209_600_000 (14 days).
   * Why: a bearer token must die on its own; only a password or key login starts a new one.
   * Exceeded: `resume` fails with `PARALLAX_ERR_AUTH_FAILED`.
   */
  resumeTokenTtlMs: number;
  /**
   * How long a one-time password lives, in ms. Default 600_000 (10 minutes).
   * Why: an OTP is meant to be typed in soon after it is made.
   * Exceeded: `loginWithOtp` fails with `PARALLAX_ERR_AUTH_FAILED`.
   */
  otpTtlMs: number;
  /**
   * How long a sign-up or device key waits for approval, in ms.
   * Default 604_800_000 (7 days).
   * Why: requests nobody decides must not wait forever.
   * Exceeded: the request expires; a client waiting on it is told (`PARALLAX_ERR_REJECTED`, "the
   * request expired") at that moment, and the row is swept.
   */
  pendingTtlMs: number;
  /**
   * How often expired credentials and requests are deleted from the store, in ms. Default 60_000.
   * Why: expired OTPs, tokens, API keys and requests must not pile up in the database.
   * Exceeded: — (a sweep deletes everything expired at that moment).
   */
  sweepIntervalMs: number;
  /**
   * Logins per second admitted server-wide for names and addresses the throttle has no room to
   * track (every tracked one is locked or busy: a flood). Default 20.
   * Why: a flood must slow logins down, not stop everyone's.
   * Exceeded: such logins fail with `PARALLAX_ERR_RATE_LIMITED` ("the server is under a login
   * flood") until the rate allows one again.
   */
  loginFloodRatePerSecond: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxMessageBytes: 8 * 1024 * 1024,
  maxSegments: 512,
  maxOutboundBytes: 16 * 1024 * 1024,
  maxConnections: 10_000,
  idleTimeoutMs: 60_000,
  maxTraversalWords: 8 * 1024 * 1024,
  maxNestingDepth: 64,
  maxExports: 10_000,
  maxImports: 10_000,
  maxQuestionsInFlight: 1024,
  maxUnfinishedAnswers: 100_000,
  maxIdentityCallsInFlight: 256,
  maxIdentityExports: 20_000,
  maxLoginsPerConnection: 32,
  maxAttachmentsPerLogin: 64,
  loginFreeFailures: 5,
  loginDelayBaseMs: 1000,
  loginDelayMaxMs: 900_000,
  challengeTimeoutMs: 60_000,
  maxChallengersPerConnection: 4,
  maxPreLoginConnectionsPerAddress: 64,
  maxPendingDevicesPerName: 5,
  maxApiKeysPerIdentity: 32,
  maxOtpsPerIdentity: 8,
  maxResumeTokensPerIdentity: 32,
  resumeTokenTtlMs: 14 * 24 * 3600 * 1000,
  otpTtlMs: 10 * 60 * 1000,
  pendingTtlMs: 7 * 24 * 3600 * 1000,
  sweepIntervalMs: 60_000,
  loginFloodRatePerSecond: 20,
});

/**
 * How many times `maxQuestionsInFlight` answered calls whose results hold capabilities a peer may
 * leave without a Finish (those results stay reachable by pipelining until then): room for the
 * peer to be a few bursts behind. A factor of another limit, documented with it, not a limit of
 * its own to tune.
 */
export const FINISH_SLACK = 4;

const MAY_BE_ZERO: ReadonlySet<keyof Limits> = new Set(["idleTimeoutMs"]);

/** Fills in defaults and checks every value; throws `PARALLAX_ERR_BAD_ARGUMENT` on a bad one. */
export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown limit "${key}"`);
    }
    if (value === undefined) continue;
    const name = key as keyof Limits;
    const min = MAY_BE_ZERO.has(name) ? 0 : 1;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      const wanted = min === 0 ? "a non-negative integer" : "a positive integer";
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `limit ${name} must be ${wanted}, got ${String(value)}`,
      );
    }
    limits[name] = value;
  }
  return limits;
}
