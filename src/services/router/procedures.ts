/**
 * The router's registered procedures (schema/router.capnp: `register`, `call`, Callee,
 * Registration, Invocation): a session registers a Callee capability under a URI pattern, other
 * sessions call URIs, and the router routes each call to one registration and tells the callee
 * who called — from the broker, never from an argument.
 *
 * Invariants:
 * - An invocation's `caller` (authid, role, session) is the calling `RouterSessionRef`'s and its
 *   `procedure` the full URI called; nothing in the call can change either.
 * - Registrations sharing one URI and match form a group with one invocation policy. A second
 *   registration joins only if both ask for the same policy and it is not `single`; otherwise
 *   PARALLAX_ERR_ALREADY_EXISTS, naming the URI (and the policy in use when they differ).
 *   `forceReregister` first removes the group's registrations of the same authid *and* role (any
 *   session: a zombie of the same script), never anyone else's; a refused registration removes
 *   nothing.
 * - Routing: among groups matching the URI, the most specific (exact, then the longest prefix,
 *   then the most specific wildcard: uri-permissions' order) that has a registration whose session
 *   is open and may still `register` the concrete URI; within it, the policy picks among those:
 *   single/first the oldest, last the newest, roundrobin in turn, random by `random()`. Nothing
 *   usable: PARALLAX_ERR_NOT_FOUND.
 * - Every call ends exactly once: with the callee's result (checked like a payload; malformed →
 *   PARALLAX_ERR_FAILED saying so), with what the callee threw (its message, PARALLAX_ERR_FAILED),
 *   after its timeout (PARALLAX_ERR_FAILED "timed out after N ms", the invocation canceled through
 *   its AbortSignal), or when the caller's signal aborts or its session ends (canceled).
 *   Timeouts: 0 means `defaultTimeoutMs`; more than `maxTimeoutMs` is cut to it.
 * - A registration ends when unregistered, when its capability is released, when replaced by
 *   forceReregister, when its session ends (`closeSession`; its calls in flight then fail), and
 *   when a call to its callee fails as disconnected. Calls in flight to a registration that is
 *   unregistered or replaced still complete.
 * - The Procedures own every callee they are given: one refused is disposed at once, one accepted
 *   when its registration ends.
 * - Bounded: `maxRegistrationsPerSession` registrations per session, `maxCallsInFlightPerSession`
 *   unanswered calls per calling session, `maxInvocationsInFlightPerCallee` unanswered invocations
 *   to the registrations of one user, over all their sessions (PARALLAX_ERR_QUOTA, kind
 *   overloaded: the callee is busy); payloads as payload.ts's `readPayload`. The last bound is what
 *   keeps callers from burying a slow callee: without it, the invocations other users pile up
 *   (each within their own quota) stop the callee's client reading at its maxQuestionsInFlight,
 *   and the broker then cuts the callee's connection at maxOutboundBytes — every registration of
 *   it gone. The default (128 × 64 KiB payloads = 8 MiB) stays under both connection limits. A
 *   call whose routed group has usable registrations that are all that busy is refused; it never
 *   falls through to a less specific registration (that would be another service).
 *
 * Tests: test/services/router/procedures.test.ts
 */
import type { Clock } from "../../clock.js";
import { canceledError, ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import {
  matches,
  mostSpecific,
  readPattern,
  readUri,
  type UriMatchName,
  type UriPattern,
} from "../../login/uri-permissions.js";
import { UriMatch } from "../../wire/gen/broker.js";
import {
  type Callee,
  InvocationPolicy,
  Registration,
  type Registration$Server,
} from "../../wire/gen/router.js";
import { DEFAULT_JSON_LIMITS, type JsonLimits } from "./payload.js";
import { type PayloadText, readPayload } from "./payload.js";
import type { RouterSessionRef } from "./session.js";

export type InvocationPolicyName = "single" | "roundrobin" | "random" | "first" | "last";

const POLICY_CODE: Record<InvocationPolicyName, InvocationPolicy> = {
  single: InvocationPolicy.SINGLE,
  roundrobin: InvocationPolicy.ROUNDROBIN,
  random: InvocationPolicy.RANDOM,
  first: InvocationPolicy.FIRST,
  last: InvocationPolicy.LAST,
};

const MATCH_CODE: Record<UriMatchName, UriMatch> = {
  exact: UriMatch.EXACT,
  prefix: UriMatch.PREFIX,
  wildcard: UriMatch.WILDCARD,
};

export interface ProceduresOptions {
  readonly clock: Clock;
  /** A call's timeout when it asks for 0. Default 60 000 ms. */
  readonly defaultTimeoutMs?: number;
  /** The longest timeout a call may ask for; longer ones are cut to it. Default 600 000 ms. */
  readonly maxTimeoutMs?: number;
  /** Registrations one session may hold (QUOTA beyond). Default 64. */
  readonly maxRegistrationsPerSession?: number;
  /** Unanswered calls one calling session may have (QUOTA beyond). Default 256. */
  readonly maxCallsInFlightPerSession?: number;
  /** Unanswered invocations to one user's registrations, over their sessions (QUOTA beyond). Default 128. */
  readonly maxInvocationsInFlightPerCallee?: number;
  /** Payload limits, for arguments and results. Default 64 KiB, 32 deep. */
  readonly json?: JsonLimits;
  /** For the `random` policy: a number in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export interface RegisterOptionsInput {
  readonly invoke?: InvocationPolicyName;
  readonly forceReregister?: boolean;
}

export interface CallOptionsInput {
  /** The caller gave up (its own call was canceled): the invocation is canceled too. */
  readonly signal?: AbortSignal;
}

/** One call in flight. */
interface PendingCall {
  fail(err: ParallaxError): void;
}

class Reg {
  ended = false;
  /** Calls in flight to this registration's callee. */
  readonly pending = new Set<PendingCall>();

  constructor(
    readonly id: number,
    readonly session: RouterSessionRef,
    readonly group: Group,
    readonly callee: Callee,
  ) {}
}

/** The registrations sharing one URI and match, oldest first. */
class Group implements UriPattern {
  readonly regs: Reg[] = [];
  /** The next turn of roundrobin. */
  next = 0;

  constructor(
    readonly uri: string,
    readonly match: UriMatchName,
    readonly policy: InvocationPolicyName,
  ) {}
}

export class Procedures {
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly maxRegistrationsPerSession: number;
  readonly maxCallsInFlightPerSession: number;
  readonly maxInvocationsInFlightPerCallee: number;
  readonly json: JsonLimits;
  readonly #clock: Clock;
  readonly #random: () => number;
  #regId = 0;
  readonly #groups: Record<UriMatchName, Map<string, Group>> = {
    exact: new Map(),
    prefix: new Map(),
    wildcard: new Map(),
  };
  readonly #bySession = new Map<RouterSessionRef, Set<Reg>>();
  /** Calls in flight by calling session. */
  readonly #calls = new Map<RouterSessionRef, Set<PendingCall>>();
  /** Invocations in flight by the callee's identity. */
  readonly #toCallee = new Map<number, number>();
  #closed = false;

  constructor(options: ProceduresOptions) {
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
    this.defaultTimeoutMs = positive("defaultTimeoutMs", options.defaultTimeoutMs ?? 60_000);
    this.maxTimeoutMs = positive("maxTimeoutMs", options.maxTimeoutMs ?? 600_000);
    this.maxRegistrationsPerSession = positive(
      "maxRegistrationsPerSession",
      options.maxRegistrationsPerSession ?? 64,
    );
    this.maxCallsInFlightPerSession = positive(
      "maxCallsInFlightPerSession",
      options.maxCallsInFlightPerSession ?? 256,
    );
    this.maxInvocationsInFlightPerCallee = positive(
      "maxInvocationsInFlightPerCallee",
      options.maxInvocationsInFlightPerCallee ?? 128,
    );
    this.json = options.json ?? DEFAULT_JSON_LIMITS;
  }

  /** Registrations (of session `s`, or all). */
  registrationCount(s?: RouterSessionRef): number {
    if (s !== undefined) return this.#bySession.get(s)?.size ?? 0;
    let n = 0;
    for (const regs of this.#bySession.values()) n += regs.size;
    return n;
  }

  /** Calls in flight (made by session `s`, or all). */
  callsInFlight(s?: RouterSessionRef): number {
    if (s !== undefined) return this.#calls.get(s)?.size ?? 0;
    let n = 0;
    for (const calls of this.#calls.values()) n += calls.size;
    return n;
  }

  /**
   * Registers `callee` for `from` under `procedure` and `match`, taking it over (disposed on
   * refusal and when the registration ends). Needs `register` on the pattern. The caller owns the
   * returned Registration stub; releasing it unregisters.
   */
  register(
    from: RouterSessionRef,
    procedure: string,
    match: UriMatchName,
    callee: Callee,
    options: RegisterOptionsInput = {},
  ): Registration {
    const policy = options.invoke ?? "single";
    let plan: { pattern: UriPattern; zombies: readonly Reg[] };
    try {
      plan = this.#checkRegister(from, procedure, match, policy, options.forceReregister === true);
    } catch (err) {
      callee.dispose();
      throw err;
    }
    for (const z of plan.zombies) this.#end(z);
    const byMatch = this.#groups[plan.pattern.match];
    let group = byMatch.get(plan.pattern.uri);
    if (group === undefined) {
      group = new Group(plan.pattern.uri, plan.pattern.match, policy);
      byMatch.set(group.uri, group);
    }
    const reg = new Reg(++this.#regId, from, group, callee);
    group.regs.push(reg);
    let mine = this.#bySession.get(from);
    if (mine === undefined) {
      mine = new Set();
      this.#bySession.set(from, mine);
    }
    mine.add(reg);
    return this.#capability(reg);
  }

  /**
   * Calls `procedure` as `from` with `payload`, waiting at most `timeoutMs` (0: the default).
   * Needs `call` on the URI. Answers the callee's result.
   */
  async call(
    from: RouterSessionRef,
    procedure: string,
    payload: PayloadText,
    timeoutMs = 0,
    options: CallOptionsInput = {},
  ): Promise<PayloadText> {
    this.#checkOpen(from);
    const uri = readUri(procedure, "procedure");
    from.need("call", { uri, match: "exact" });
    const args = readPayload(payload, this.json, "the call's payload");
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `timeoutMs must be an integer >= 0; got ${timeoutMs}`);
    }
    const timeout = timeoutMs === 0 ? this.defaultTimeoutMs : Math.min(timeoutMs, this.maxTimeoutMs);
    const inFlight = this.#calls.get(from)?.size ?? 0;
    if (inFlight >= this.maxCallsInFlightPerSession) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this session has ${inFlight} calls in flight already (at most ${this.maxCallsInFlightPerSession})`,
      );
    }
    if (options.signal?.aborted === true) throw canceledError();
    const reg = this.#route(uri);
    if (reg === undefined) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `no procedure registered for "${uri}"`);
    }
    return this.#invoke(from, reg, uri, args, timeout, options.signal);
  }

  /** Ends every registration of session `s` (failing calls in flight to them) and cancels its calls. */
  closeSession(s: RouterSessionRef): void {
    for (const reg of [...(this.#bySession.get(s) ?? [])]) {
      this.#end(reg);
      for (const p of [...reg.pending]) {
        p.fail(new ParallaxError(ErrorCode.FAILED, `the callee's session ended before it answered`));
      }
    }
    for (const p of [...(this.#calls.get(s) ?? [])]) p.fail(canceledError());
  }

  /** Ends every registration and fails every call in flight; later calls fail. */
  close(): void {
    this.#closed = true;
    for (const s of [...this.#bySession.keys(), ...this.#calls.keys()]) this.closeSession(s);
  }

  #checkOpen(from: RouterSessionRef): void {
    if (this.#closed) throw new ParallaxError(ErrorCode.FAILED, "the router's procedures are closed");
    if (!from.open) throw new ParallaxError(ErrorCode.FAILED, `session ${from.session} has ended`);
  }

  /** Checks a registration and says which registrations forceReregister removes; changes nothing. */
  #checkRegister(
    from: RouterSessionRef,
    procedure: string,
    match: UriMatchName,
    policy: InvocationPolicyName,
    force: boolean,
  ): { pattern: UriPattern; zombies: readonly Reg[] } {
    this.#checkOpen(from);
    const pattern = readPattern(procedure, match, "procedure");
    if (!Object.hasOwn(POLICY_CODE, policy)) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown invocation policy "${String(policy)}"`);
    }
    from.need("register", pattern);
    const group = this.#groups[pattern.match].get(pattern.uri);
    const zombies =
      force && group !== undefined
        ? group.regs.filter((r) => r.session.authid === from.authid && r.session.role === from.role)
        : [];
    const others = (group?.regs.length ?? 0) - zombies.length;
    if (group !== undefined && others > 0) {
      const what = match === "exact" ? `"${pattern.uri}"` : `${match} "${pattern.uri}"`;
      if (group.policy !== policy) {
        throw new ParallaxError(
          ErrorCode.ALREADY_EXISTS,
          `procedure ${what} is registered with policy "${group.policy}"; this registration asks for "${policy}"`,
        );
      }
      if (policy === "single") {
        throw new ParallaxError(
          ErrorCode.ALREADY_EXISTS,
          `procedure ${what} is registered already (policy "single" allows one registration)`,
        );
      }
    }
    const mine = (this.#bySession.get(from)?.size ?? 0) - zombies.filter((z) => z.session === from).length;
    if (mine >= this.maxRegistrationsPerSession) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `this session has ${mine} registrations already (at most ${this.maxRegistrationsPerSession})`,
      );
    }
    return { pattern, zombies };
  }

  /** The registration a call to `uri` goes to, if any. */
  #route(uri: string): Reg | undefined {
    const exact = this.#groups.exact.get(uri);
    if (exact !== undefined) {
      const reg = this.#pick(exact, uri);
      if (reg !== undefined) return reg;
    }
    const parts = uri.split(".");
    for (let n = parts.length; n >= 0; n--) {
      const group = this.#groups.prefix.get(parts.slice(0, n).join("."));
      if (group === undefined) continue;
      const reg = this.#pick(group, uri);
      if (reg !== undefined) return reg;
    }
    const wild = [...this.#groups.wildcard.values()].filter((g) => matches(g, uri));
    while (wild.length > 0) {
      const best = mostSpecific(wild, uri) as Group;
      const reg = this.#pick(best, uri);
      if (reg !== undefined) return reg;
      wild.splice(wild.indexOf(best), 1);
    }
    return undefined;
  }

  /** The group's registration for a call to `uri` by its policy, among those that may serve it. */
  #pick(group: Group, uri: string): Reg | undefined {
    for (const r of group.regs.filter((r) => !r.session.open)) this.#end(r);
    const allowed = group.regs.filter((r) => r.session.may("register", uri));
    if (allowed.length === 0) return undefined;
    const usable = allowed.filter(
      (r) => (this.#toCallee.get(r.session.identityId) ?? 0) < this.maxInvocationsInFlightPerCallee,
    );
    if (usable.length === 0) {
      const names = [...new Set(allowed.map((r) => r.session.authid))].join(", ");
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `the callee of "${uri}" (${names}) has ${this.maxInvocationsInFlightPerCallee} calls in flight (maxInvocationsInFlightPerCallee); try again later`,
      );
    }
    switch (group.policy) {
      case "single":
      case "first":
        return usable[0];
      case "last":
        return usable.at(-1);
      case "roundrobin": {
        const i = group.next % usable.length;
        group.next = i + 1;
        return usable[i];
      }
      case "random": {
        const r = this.#random();
        const i = Math.min(usable.length - 1, Math.max(0, Math.floor(r * usable.length)));
        return usable[Number.isFinite(i) ? i : 0];
      }
    }
  }

  #invoke(
    from: RouterSessionRef,
    reg: Reg,
    uri: string,
    payload: PayloadText,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Promise<PayloadText> {
    return new Promise<PayloadText>((resolve, reject) => {
      const controller = new AbortController();
      let mine = this.#calls.get(from);
      if (mine === undefined) {
        mine = new Set();
        this.#calls.set(from, mine);
      }
      const calls = mine;
      const calleeId = reg.session.identityId;
      this.#toCallee.set(calleeId, (this.#toCallee.get(calleeId) ?? 0) + 1);
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        const left = (this.#toCallee.get(calleeId) ?? 1) - 1;
        if (left > 0) this.#toCallee.set(calleeId, left);
        else this.#toCallee.delete(calleeId);
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        reg.pending.delete(pending);
        calls.delete(pending);
        if (calls.size === 0 && this.#calls.get(from) === calls) this.#calls.delete(from);
        return true;
      };
      const pending: PendingCall = {
        fail: (err) => {
          if (!settle()) return;
          controller.abort();
          reject(err);
        },
      };
      const onAbort = (): void => pending.fail(canceledError());
      const timer = this.#clock.setTimer(timeout, () =>
        pending.fail(new ParallaxError(ErrorCode.FAILED, `call to "${uri}" timed out after ${timeout} ms`)),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      reg.pending.add(pending);
      calls.add(pending);
      let answer: ReturnType<Callee["invoke"]>;
      try {
        answer = reg.callee.invoke(
          {
            invocation: {
              procedure: uri,
              caller: { authid: from.authid, role: from.role, session: BigInt(from.session) },
              payload: { args: payload.args, kwargs: payload.kwargs },
            },
          },
          { signal: controller.signal },
        );
      } catch (err) {
        // (a released or broken stub throws at once: the call ends here, its counts with it)
        pending.fail(new ParallaxError(ErrorCode.FAILED, toParallaxError(err).message));
        return;
      }
      answer.then(
        (results) => {
          if (settled) return;
          let out: PayloadText;
          try {
            const p = results.result;
            out = readPayload({ args: p.args, kwargs: p.kwargs }, this.json, "the callee's result");
          } catch (err) {
            pending.fail(
              new ParallaxError(
                ErrorCode.FAILED,
                `the callee's result for "${uri}" was malformed: ${toParallaxError(err).message}`,
              ),
            );
            return;
          }
          if (settle()) resolve(out);
        },
        (err: unknown) => {
          if (settled) return;
          const e = toParallaxError(err);
          if (e.kind === "disconnected" || e.code === ErrorCode.DISPOSED) {
            this.#end(reg);
            pending.fail(
              new ParallaxError(ErrorCode.FAILED, `the callee for "${uri}" is gone: ${e.message}`),
            );
          } else {
            pending.fail(new ParallaxError(ErrorCode.FAILED, e.message));
          }
        },
      );
    });
  }

  #end(reg: Reg): void {
    if (reg.ended) return;
    reg.ended = true;
    const group = reg.group;
    const i = group.regs.indexOf(reg);
    if (i >= 0) group.regs.splice(i, 1);
    const byMatch = this.#groups[group.match];
    if (group.regs.length === 0 && byMatch.get(group.uri) === group) byMatch.delete(group.uri);
    const mine = this.#bySession.get(reg.session);
    mine?.delete(reg);
    if (mine?.size === 0) this.#bySession.delete(reg.session);
    reg.callee.dispose();
  }

  #capability(reg: Reg): Registration {
    const impl: Registration$Server & Disposable = {
      unregister: () => {
        this.#end(reg);
      },
      info: () => ({
        id: BigInt(reg.id),
        procedure: reg.group.uri,
        match: MATCH_CODE[reg.group.match],
        invoke: POLICY_CODE[reg.group.policy],
      }),
      [Symbol.dispose]: () => this.#end(reg),
    };
    return Registration.server(impl);
  }
}

function positive(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ParallaxError(
      ErrorCode.BAD_ARGUMENT,
      `Procedures ${name} must be a positive integer; got ${n}`,
    );
  }
  return n;
}
