/**
 * The router (schema/router.capnp): seed 003's WAMP-style extras as a Parallax service. Each
 * attachment of ("router", "session") is one session with its own RouterSessionPerspective; the
 * parts behind it — PubSub, Procedures, Rosters, Metadata — know a session only by its
 * RouterSessionRef, made here from the login and the user's stored role, and drop all it owns
 * when the attachment ends (detach, disconnect, logout, revocation).
 *
 * Invariants:
 * - Who acts is the attachment's login: authid and identity from the broker, the role from the
 *   router's role table as it was when the session attached (a role change bumps the user's
 *   epoch, so no session outlives the role it was made with), the URI limits from the login's
 *   API key. No method takes a name, role or session id to decide who acts.
 * - Registrations, subscriptions, roster entries and watches live exactly as long as their
 *   session: `onDetached` closes them all, whatever ended it.
 * - Session ids are random 53-bit integers, unique among this router's live sessions.
 *
 * Tests: test/services/router/router-service.test.ts, test/services/router/router-security.test.ts
 */
import { randomInt } from "node:crypto";
import type { Struct } from "capnp-ts";
import type { CallContext, Capability } from "../../caps/index.js";
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  type DetachReason,
  type IdentityView,
  PerUserService,
  type ServiceHost,
  type ServiceModule,
  UserPerspective,
} from "../../login/index.js";
import { type UriMatchName, URI_MATCHES } from "../../login/uri-permissions.js";
import { ROUTER_STORE, type RouterStore } from "../../store/router-store.js";
import { AUTH_METHOD } from "../../login/broker-wire.js";
import {
  InvocationPolicy,
  type Payload,
  type Precondition,
  type PublishOptions,
  RouterSession,
  type RouterSession$Server,
  type RouterSession_call_Params,
  type RouterSession_call_Results,
  type RouterSession_metadataDelete_Params,
  type RouterSession_metadataGet_Params,
  type RouterSession_metadataSet_Params,
  type RouterSession_metadataWatch_Params,
  type RouterSession_metadataWatch_Results,
  type RouterSession_publish_Params,
  type RouterSession_register_Params,
  type RouterSession_register_Results,
  type RouterSession_rosterQuery_Params,
  type RouterSession_rosterRegister_Params,
  type RouterSession_rosterUnregister_Params,
  type RouterSession_rosterWatch_Params,
  type RouterSession_rosterWatch_Results,
  type RouterSession_subscribe_Params,
  type RouterSession_subscribe_Results,
} from "../../wire/gen/router.js";
import { Metadata, type MetadataOptions } from "./metadata.js";
import { Procedures, type ProceduresOptions } from "./procedures.js";
import { PubSub, type PubSubOptions } from "./pubsub.js";
import { DEFAULT_ROLES, type RoleConfig, rulesOf } from "./roles.js";
import { ROUTER_SESSION } from "./router-keys.js";
import { Rosters, type RostersOptions } from "./rosters.js";
import { RouterSessionRef } from "./session.js";

export interface RouterOptions {
  /** Roles and their URI rules. Default: DEFAULT_ROLES (frontend, backend, trust). */
  readonly roles?: RoleConfig;
  readonly pubsub?: Omit<PubSubOptions, "clock">;
  readonly procedures?: Omit<ProceduresOptions, "clock">;
  readonly rosters?: Omit<RostersOptions, "clock">;
  readonly metadata?: Omit<MetadataOptions, "clock">;
}

/** The router as a module for `startBroker({ services: [router()] })`. */
export function router(options: RouterOptions = {}): ServiceModule<RouterService, RouterStore> {
  return {
    name: ROUTER_SESSION.service,
    defaultKeyring: [ROUTER_SESSION],
    store: ROUTER_STORE,
    create: (ctx) => new RouterService({ clock: ctx.clock, store: ctx.repository, host: ctx.host }, options),
  };
}

const POLICIES = ["single", "roundrobin", "random", "first", "last"] as const;
type PolicyName = (typeof POLICIES)[number];

export class RouterService extends PerUserService<null, RouterSessionPerspective> {
  readonly name = ROUTER_SESSION.service;
  readonly roles: RoleConfig;
  readonly store: RouterStore;
  readonly pubsub: PubSub;
  readonly procedures: Procedures;
  readonly rosters: Rosters;
  readonly metadata: Metadata;
  readonly #sessionIds = new Set<number>();

  readonly #host: ServiceHost | undefined;

  constructor(
    context: { readonly clock: Clock; readonly store: RouterStore; readonly host?: ServiceHost },
    options: RouterOptions = {},
  ) {
    super();
    this.#host = context.host;
    const clock = context.clock;
    this.roles = options.roles ?? DEFAULT_ROLES;
    this.store = context.store;
    // Sequences start from the clock (ms × 1000), so a restarted router continues above every
    // sequence an earlier run handed out (unless it published more than 1 000 events per ms on
    // average) and a client resuming from one hears `unrecoverable`, never another run's events;
    // and 0 ("from now on") is never a sequence a subscriber has to resume from.
    this.pubsub = new PubSub({ startSeq: clock.now() * 1000, ...options.pubsub, clock });
    this.procedures = new Procedures({ ...options.procedures, clock });
    this.rosters = new Rosters({ ...options.rosters, clock });
    this.metadata = new Metadata(context.store, { ...options.metadata, clock });
  }

  protected newPerspective(name: string, identity: IdentityView): RouterSessionPerspective | undefined {
    return name === ROUTER_SESSION.perspective ? new RouterSessionPerspective(this, identity) : undefined;
  }

  protected newUser(): null {
    return null;
  }

  /** @internal A fresh session id. */
  newSessionId(): number {
    for (;;) {
      const id = randomInt(1, 2 ** 48);
      if (!this.#sessionIds.has(id)) {
        this.#sessionIds.add(id);
        return id;
      }
    }
  }

  /** @internal The session ended: everything it owned goes. */
  closeSession(ref: RouterSessionRef): void {
    ref.markClosed();
    this.#sessionIds.delete(ref.session);
    this.pubsub.closeSession(ref);
    this.procedures.closeSession(ref);
    this.rosters.closeSession(ref);
    this.metadata.closeSession(ref);
  }

  /** The role a user has (the default role when none is stored). */
  async roleOf(identity: IdentityView): Promise<string> {
    if (identity.anonymous) return this.roles.defaultRole;
    return (await this.store.roleOf(identity.id)) ?? this.roles.defaultRole;
  }

  /**
   * Gives a user a role (stored with an epoch bump in one transaction), then ends their live
   * logins here: no session outlives the role it was made with. Other processes' brokers see the
   * bump through their store watcher.
   */
  async setRole(identityId: number, role: string): Promise<void> {
    const epoch = await this.store.setRole(identityId, role);
    this.#host?.revokeIdentity(identityId, epoch, `the user's router role changed to "${role}"`);
  }

  close(): void {
    this.pubsub.close();
    this.procedures.close();
    this.rosters.close();
    this.metadata.close();
  }
}

/** One session: one attachment of ("router", "session"). */
export class RouterSessionPerspective extends UserPerspective<null> implements RouterSession$Server {
  /** The session as the router's parts see it; made once the role is read. */
  readonly #ref: Promise<RouterSessionRef>;
  #made: RouterSessionRef | undefined;
  #ended = false;

  constructor(
    readonly router: RouterService,
    identity: IdentityView,
  ) {
    super(router, identity);
    this.#ref = router.roleOf(identity).then((role) => {
      const ref = new RouterSessionRef(
        router.newSessionId(),
        identity.id,
        identity.name,
        role,
        rulesOf(router.roles, role),
        identity.uriPermissions,
      );
      this.#made = ref;
      if (this.#ended) router.closeSession(ref);
      return ref;
    });
    // A failed role read fails the calls that need the session; it must not go unhandled.
    this.#ref.catch(() => {});
  }

  capability(): RouterSession {
    return RouterSession.server(this.serve<RouterSession$Server>());
  }

  protected override onDetached(_reason: DetachReason): void {
    this.#ended = true;
    if (this.#made !== undefined) this.router.closeSession(this.#made);
  }

  /** The session, once attached and its role read; REVOKED after it ended. */
  async #session(): Promise<RouterSessionRef> {
    const ref = await this.#ref;
    if (!ref.open) throw new ParallaxError(ErrorCode.REVOKED, "this router session has ended");
    return ref;
  }

  /** The session, disposing `cap` (a client capability the call handed over) if there is none. */
  async #sessionOwning(cap: Capability): Promise<RouterSessionRef> {
    try {
      return await this.#session();
    } catch (err) {
      cap.dispose();
      throw err;
    }
  }

  async whoami() {
    const s = await this.#session();
    return {
      info: {
        authid: s.authid,
        role: s.role,
        session: BigInt(s.session),
        authMethod: AUTH_METHOD[this.identity.authMethod],
        apiKeyPermissions: (s.keyRules ?? []).map((r) => ({
          ...r,
          match: URI_MATCHES.indexOf(r.match) as 0 | 1 | 2,
        })),
      },
    };
  }

  async publish(params: RouterSession_publish_Params) {
    const s = await this.#session();
    const seq = this.router.pubsub.publish(
      s,
      params.topic,
      payloadOf(params.payload),
      publishOptions(params.options),
    );
    return { seq: BigInt(seq) };
  }

  async subscribe(params: RouterSession_subscribe_Params, ctx: CallContext<RouterSession_subscribe_Results>) {
    const handler = params.handler;
    const s = await this.#sessionOwning(handler);
    const o = params.options;
    const resumeAfter = Number(o.resumeAfter);
    if (!Number.isSafeInteger(resumeAfter)) {
      handler.dispose();
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `resumeAfter ${o.resumeAfter} is not a sequence this router gave out`,
      );
    }
    const { subscription, lastSeq } = this.router.pubsub.subscribe(
      s,
      params.topic,
      matchName(o.match),
      handler,
      {
        getRetained: o.getRetained,
        resumeAfter,
      },
    );
    return answer(ctx, { subscription, lastSeq: BigInt(lastSeq) }, subscription);
  }

  async register(params: RouterSession_register_Params, ctx: CallContext<RouterSession_register_Results>) {
    const callee = params.callee;
    const s = await this.#sessionOwning(callee);
    const o = params.options;
    const registration = this.router.procedures.register(s, params.procedure, matchName(o.match), callee, {
      invoke: policyName(o.invoke),
      forceReregister: o.forceReregister,
    });
    return answer(ctx, { registration }, registration);
  }

  async call(params: RouterSession_call_Params, ctx: CallContext<RouterSession_call_Results>) {
    const s = await this.#session();
    const result = await this.router.procedures.call(
      s,
      params.procedure,
      payloadOf(params.payload),
      params.timeoutMs,
      { signal: ctx.signal },
    );
    return { result };
  }

  async rosterRegister(params: RouterSession_rosterRegister_Params) {
    const s = await this.#session();
    return { entry: this.router.rosters.register(s, params.name, params.data, params.visibleTo.toArray()) };
  }

  async rosterUnregister(params: RouterSession_rosterUnregister_Params) {
    const s = await this.#session();
    return { removed: this.router.rosters.unregister(s, params.name) };
  }

  async rosterQuery(params: RouterSession_rosterQuery_Params) {
    const s = await this.#session();
    return { entries: this.router.rosters.query(s, params.name) };
  }

  async rosterWatch(
    params: RouterSession_rosterWatch_Params,
    ctx: CallContext<RouterSession_rosterWatch_Results>,
  ) {
    const watcher = params.watcher;
    const s = await this.#sessionOwning(watcher);
    const { entries, watch } = this.router.rosters.watch(s, params.name, watcher);
    return answer(ctx, { entries, watch }, watch);
  }

  async metadataSet(params: RouterSession_metadataSet_Params) {
    const s = await this.#session();
    return {
      outcome: await this.router.metadata.set(
        s,
        params.key,
        params.value,
        preconditionOf(params.precondition),
      ),
    };
  }

  async metadataGet(params: RouterSession_metadataGet_Params) {
    const s = await this.#session();
    return { entry: await this.router.metadata.get(s, params.key) };
  }

  async metadataList() {
    const s = await this.#session();
    return { entries: await this.router.metadata.list(s) };
  }

  async metadataDelete(params: RouterSession_metadataDelete_Params) {
    const s = await this.#session();
    return { outcome: await this.router.metadata.delete(s, params.key, preconditionOf(params.precondition)) };
  }

  async metadataWatch(
    params: RouterSession_metadataWatch_Params,
    ctx: CallContext<RouterSession_metadataWatch_Results>,
  ) {
    const watcher = params.watcher;
    const s = await this.#sessionOwning(watcher);
    const watch = this.router.metadata.watch(s, watcher);
    return answer(ctx, { watch }, watch);
  }
}

/**
 * Puts `shape` into the call's results and drops our own reference on `cap`: the results hold the
 * one the caller gets, so releasing it ends the subscription, registration or watch.
 */
function answer<R extends Struct>(ctx: CallContext<R>, shape: unknown, cap: Capability): R {
  try {
    (ctx.results as unknown as { $set(shape: unknown): void }).$set(shape);
  } finally {
    cap.dispose();
  }
  return ctx.results;
}

function payloadOf(p: Payload): { args: string; kwargs: string } {
  return { args: p.args, kwargs: p.kwargs };
}

function matchName(m: number): UriMatchName {
  const name = URI_MATCHES[m];
  if (name === undefined) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown match policy ${m}`);
  return name;
}

function policyName(p: InvocationPolicy): PolicyName {
  const name = POLICIES[p];
  if (name === undefined) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `unknown invocation policy ${p}`);
  return name;
}

function sessionIds(list: { toArray(): bigint[] }, what: string): number[] {
  return list.toArray().map((b) => {
    const n = Number(b);
    if (!Number.isSafeInteger(n))
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `${what}: ${b} is not a session id`);
    return n;
  });
}

function publishOptions(o: PublishOptions) {
  return {
    excludeMe: o.excludeMe,
    exclude: sessionIds(o.exclude, "exclude"),
    excludeAuthid: o.excludeAuthid.toArray(),
    excludeAuthrole: o.excludeAuthrole.toArray(),
    eligible: sessionIds(o.eligible, "eligible"),
    eligibleAuthid: o.eligibleAuthid.toArray(),
    eligibleAuthrole: o.eligibleAuthrole.toArray(),
    retain: o.retain,
  };
}

function preconditionOf(p: Precondition): { kind: "none" } | { kind: "version"; version: number } {
  if (p.isVersion()) {
    const version = Number(p.version);
    if (!Number.isSafeInteger(version))
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `version ${p.version} is too large`);
    return { kind: "version", version };
  }
  return { kind: "none" };
}

export { InvocationPolicy };
