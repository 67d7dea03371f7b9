/**
 * The service kit (src/login: perspective-key, per-user-service, notifier, event-bus,
 * service-module), each claim through a real broker: typed attach with pipelining, service modules
 * (default keyrings, refused registrations), PerUserService's per-user and per-attachment
 * lifecycle, serve()'s owner check, and a tiny counter service written on the kit whose
 * listeners are per device, capped and deduplicated.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Capability } from "../../src/caps/index.js";
import type { Clock } from "../../src/clock.js";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import { makeVerifier, signUp } from "../../src/login/client-login.js";
import {
  attach,
  Broker,
  type DetachKind,
  type DetachReason,
  type EventBus,
  type IdentityView,
  keyringPair,
  Notifier,
  Perspective,
  PerUserService,
  perspectiveKey,
  type Service,
  type ServiceModule,
  serviceModule,
  topic,
  UserPerspective,
} from "../../src/login/index.js";
import { RpcConnection } from "../../src/rpc/index.js";
import { lobby } from "../../src/services/lobby/lobby-service.js";
import { SqliteBrokerStore, storeContract } from "../../src/store/index.js";
import { memoryPair } from "../../src/transport/index.js";
import { type Identity, Root } from "../../src/wire/gen/broker.js";
import {
  LobbyMember,
  type LobbyMember$Server,
  Room,
  type Room$Server,
  type Room_listen_Params,
  type Room_say_Params,
  RoomListener,
} from "../../src/wire/gen/lobby.js";
import { EMPTY_STATS } from "../helpers/rpc-stats.js";
import { waitFor } from "../helpers/wait.js";
import { type Harness, kdf, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

// ---- the counter: a tiny service written on the kit --------------------------------------------

/** One typed key per (service, perspective); the perspective speaks the LobbyMember interface. */
const COUNTER = perspectiveKey("counter", "device", LobbyMember);
const OPEN_COUNTER = perspectiveKey("open-counter", "device", LobbyMember);
/** The keyring entries of those keys, as the store keeps them. */
const COUNTER_PAIR = keyringPair(COUNTER);
const OPEN_COUNTER_PAIR = keyringPair(OPEN_COUNTER);

/** A bump as it travels on the bus (JSON-compatible). */
interface Bumped {
  readonly identityId: number;
  readonly speaker: string;
  readonly count: number;
  readonly text: string;
  readonly at: number;
}

const COUNTER_BUMPED = topic<Bumped>("test.counter.bumped");

/** What one user's devices share: the count, and the notifier of every device's listeners. */
interface CounterUser {
  count: number;
  readonly listeners: Notifier<RoomListener, Bumped>;
}

interface CounterOptions {
  readonly name?: string;
  readonly allowAnonymous?: boolean;
  readonly maxListenersPerDevice?: number;
}

/**
 * A per-user counter: `room().say(text)` adds one to the user's count and tells every listener
 * of that user's devices (through the bus); `hello()` answers the count. `log` records the
 * kit's lifecycle calls in order.
 */
class CounterService extends PerUserService<CounterUser, CounterDevice> {
  readonly name: string;
  override readonly allowAnonymous: boolean;
  readonly log: string[] = [];
  readonly reasons: DetachReason[] = [];
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly #maxListeners: number;
  readonly #unsubscribe: () => void;

  constructor(context: { readonly clock: Clock; readonly bus: EventBus }, options: CounterOptions = {}) {
    super();
    this.name = options.name ?? COUNTER.service;
    this.allowAnonymous = options.allowAnonymous ?? false;
    this.#maxListeners = options.maxListenersPerDevice ?? 8;
    this.clock = context.clock;
    this.bus = context.bus;
    this.#unsubscribe = this.bus.subscribe(COUNTER_BUMPED, (e) =>
      this.userOf(e.identityId)?.listeners.notify(e),
    );
  }

  protected newPerspective(name: string, identity: IdentityView): CounterDevice | undefined {
    return name === COUNTER.perspective ? new CounterDevice(this, identity) : undefined;
  }

  protected newUser(identity: IdentityView): CounterUser {
    this.log.push(`new ${identity.name}`);
    return {
      count: 0,
      listeners: new Notifier<RoomListener, Bumped>({
        maxPerOwner: this.#maxListeners,
        deliver: (l, e) =>
          l.said({ line: { speaker: e.speaker, text: `${e.count}: ${e.text}`, at: BigInt(e.at) } }),
      }),
    };
  }

  protected override forgetUser(user: CounterUser, identity: IdentityView): void {
    this.log.push(`forget ${identity.name}`);
    user.listeners.clear();
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** One attachment of the counter: one device of one user. */
class CounterDevice extends UserPerspective<CounterUser> implements LobbyMember$Server {
  constructor(
    readonly counter: CounterService,
    identity: IdentityView,
  ) {
    super(counter, identity);
  }

  capability(): LobbyMember {
    return LobbyMember.server(this.serve<LobbyMember$Server>());
  }

  protected override onAttached(_client: Capability | null): void {
    this.counter.log.push(`attach ${this.identity.name}`);
  }

  protected override onDetached(reason: DetachReason): void {
    this.counter.log.push(`detach ${this.identity.name} ${reason.kind}`);
    this.counter.reasons.push(reason);
    this.user.listeners.removeOwner(this, reason);
  }

  hello() {
    return { greeting: `${this.identity.name} counted ${this.user.count}` };
  }

  /** This device's room: its listeners are this device's; each method checks the caller. */
  room() {
    const room: Room$Server = {
      say: async (params: Room_say_Params, ctx) => {
        this.caller(ctx);
        const count = ++this.user.count;
        const at = this.counter.clock.now();
        const event = {
          identityId: this.identity.id,
          speaker: this.identity.name,
          count,
          text: params.text,
          at,
        };
        await this.counter.bus.publish(COUNTER_BUMPED, event);
        return { line: { speaker: this.identity.name, text: `${count}`, at: BigInt(at) } };
      },
      history: (_params, ctx) => {
        this.caller(ctx);
        return { lines: [] };
      },
      listen: (params: Room_listen_Params, ctx) => {
        this.caller(ctx);
        this.user.listeners.add(this, params.listener);
      },
    };
    return { room: Room.server(room) };
  }
}

function counter(options: CounterOptions = {}): ServiceModule<CounterService> {
  return {
    name: options.name ?? COUNTER.service,
    defaultKeyring: [options.name === OPEN_COUNTER.service ? OPEN_COUNTER : COUNTER],
    create: (ctx) => new CounterService(ctx, options),
  };
}

function counterOf(harness: Harness, name = COUNTER.service): CounterService {
  const service = harness.broker.service(name);
  if (!(service instanceof CounterService)) throw new Error(`no counter named ${name}`);
  return service;
}

/** A client listener that records what it hears, as "speaker text". */
function ear() {
  const heard: string[] = [];
  const waiting: Array<{ n: number; resolve: () => void }> = [];
  const cap = RoomListener.server({
    said({ line }) {
      heard.push(`${line.speaker} ${line.text}`);
      for (const w of waiting.filter((x) => heard.length >= x.n)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    },
  });
  /** Resolves once `n` lines were heard. */
  const until = (n: number): Promise<void> =>
    heard.length >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }));
  return { cap, heard, until };
}

/** Logs `name` in (one connection: one device) and attaches `key`'s perspective. */
async function device(name: string, key = COUNTER) {
  const login = await h.login(name, `${name} pass`);
  const member = attach(login.identity, key);
  // Keep the room, release the results it came in (as attach() does).
  const call = member.room();
  const room = call.room.dup();
  call.then(
    () => call.dispose(),
    () => call.dispose(),
  );
  return { ...login, member, room };
}

async function idOf(name: string): Promise<number> {
  const id = (await h.store.findIdentityByName(name))?.id;
  if (id === undefined) throw new Error(`no user ${name}`);
  return id;
}

function thrown(fn: () => unknown): ParallaxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    return err as ParallaxError;
  }
  throw new Error("expected a throw");
}

// ---- attach -------------------------------------------------------------------------------------

describe("attach(identity, KEY)", () => {
  it("answers a typed stub at once, whose calls are pipelined on the attach before it resolves", async () => {
    // The counter behind a gate: the broker's attach waits until the test opens it.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let inner: CounterService | undefined;
    const gated: ServiceModule = {
      name: COUNTER.service,
      defaultKeyring: [],
      create(ctx) {
        const made = new CounterService(ctx);
        inner = made;
        return {
          name: COUNTER.service,
          async getPerspectiveForIdentity(name: string, identity: IdentityView) {
            await gate;
            return made.getPerspectiveForIdentity(name, identity);
          },
          close: () => made.close(),
        } satisfies Service;
      },
    };
    h = await makeHarness({ services: [gated] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const alice = await h.login("alice", "alice pass");
    await waitFor(() => expect(alice.server.stats().answers).toBe(0));
    const member: LobbyMember = attach(alice.identity, COUNTER);
    const hello = member.hello();
    // Both the attach and the hello reached the server while the attach is still held.
    await waitFor(() => expect(alice.server.stats().answers).toBe(2));
    expect(inner?.attachmentCount).toBe(0);
    open();
    expect((await hello).greeting).toBe("alice counted 0");
    hello.dispose();
    expect(inner?.attachmentCount).toBe(1);
    // The harness checks only PerUserServices it can see; this one is behind the gate.
    await h.close();
    expect(inner?.log.at(-1)).toBe("forget alice");
    expect({ users: inner?.userCount, attached: inner?.attachmentCount }).toEqual({ users: 0, attached: 0 });
  });

  it("releases the attach's results: the server exports only what the client holds, and disposing the stub releases the attachment", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const alice = await h.login("alice", "alice pass");
    const id = await idOf("alice");
    await waitFor(() => expect(alice.server.stats().answers).toBe(0));
    const held = alice.server.stats().exports;
    const heldByLogin = h.broker.usageOf(id)?.exports;
    const member = attach(alice.identity, COUNTER);
    const hello = member.hello();
    expect((await hello).greeting).toBe("alice counted 0");
    hello.dispose();
    // One more export (the perspective), no answer left: the attach's results were released.
    await waitFor(() =>
      expect(alice.server.stats()).toEqual({ ...EMPTY_STATS, imports: 0, exports: held + 1 }),
    );
    expect(h.broker.usageOf(id)?.exports).toBe((heldByLogin ?? 0) + 1);
    // The stub was the last reference: letting go of it ends the attachment.
    member.dispose();
    await waitFor(() => expect(counterOf(h).log).toContain("forget alice"));
    expect(counterOf(h).log).toEqual(["new alice", "attach alice", "detach alice released", "forget alice"]);
    await waitFor(() => expect(alice.server.stats().exports).toBe(held));
    expect(h.broker.usageOf(id)?.exports).toBe(heldByLogin);
  });
});

// ---- modules ------------------------------------------------------------------------------------

describe("service modules", () => {
  it("put the union of their defaultKeyring on a new user's keyring at sign-up", async () => {
    const store = SqliteBrokerStore.open(":memory:");
    const broker = new Broker({ store, services: [counter(), lobby()], signUp: "open" });
    const [a, b] = memoryPair(undefined, [undefined, "127.0.0.1"]);
    const server = new RpcConnection(b);
    const bootstrap = broker.root(server);
    server.setBootstrap(bootstrap);
    bootstrap.dispose();
    const client = new RpcConnection(a);
    try {
      const res = await signUp(client.bootstrap(Root), "carol", "carol pass", { kdf });
      const identity = res.identity as Identity;
      const keyring = (await identity.whoami()).info.keyring
        .toArray()
        .map((k) => `${k.service}/${k.perspective}`);
      expect(keyring).toEqual(["counter/device", "lobby/member"]);
      expect((await store.findIdentityByName("carol"))?.keyring).toEqual([
        { service: "counter", perspective: "device" },
        { service: "lobby", perspective: "member" },
      ]);
      // The pair works: the module's service attaches for her.
      expect((await attach(identity, COUNTER).hello()).greeting).toBe("carol counted 0");
    } finally {
      const closed = new Promise<void>((resolve) => server.onClose(() => resolve()));
      client.close();
      await closed;
      expect(server.stats()).toEqual(EMPTY_STATS);
      expect(broker.idle).toBe(true);
      expect(broker.service("counter")).toBeInstanceOf(CounterService);
      expect((broker.service("counter") as CounterService).userCount).toBe(0);
      broker.close();
      store.close();
    }
  });

  it("refuse two modules of one name with ALREADY_EXISTS, before the second is made", () => {
    const store = SqliteBrokerStore.open(":memory:");
    try {
      let made = 0;
      const second: ServiceModule = {
        name: "counter",
        defaultKeyring: [],
        create: (ctx) => {
          made++;
          return new CounterService(ctx);
        },
      };
      const err = thrown(() => new Broker({ store, services: [counter(), second] }));
      expect(err.code).toBe(ErrorCode.ALREADY_EXISTS);
      expect(err.message).toContain('"counter"');
      expect(made).toBe(0);
      // The admin service's name is taken too.
      const admin = thrown(() => new Broker({ store, services: [counter({ name: "broker" })] }));
      expect(admin.code).toBe(ErrorCode.ALREADY_EXISTS);
    } finally {
      store.close();
    }
  });

  it("refuse a module whose store contract the store lacks with STORAGE naming both, before it is made", () => {
    const store = SqliteBrokerStore.open(":memory:");
    try {
      let made = 0;
      const ledger: ServiceModule<Service, { balance(): number }> = {
        name: "ledger",
        defaultKeyring: [],
        store: storeContract<{ balance(): number }>("bank-ledger"),
        create: () => {
          made++;
          return { name: "ledger", getPerspectiveForIdentity: () => new NoPerspective() };
        },
      };
      const err = thrown(() => new Broker({ store, services: [ledger as ServiceModule] }));
      expect(err.code).toBe(ErrorCode.STORAGE);
      expect(err.message).toContain("ledger service");
      expect(err.message).toContain("bank-ledger contract");
      expect(made).toBe(0);
    } finally {
      store.close();
    }
  });
});

class NoPerspective extends Perspective {
  capability(): never {
    throw new ParallaxError(ErrorCode.FAILED, "never attached");
  }
}

// ---- PerUserService -----------------------------------------------------------------------------

describe("PerUserService", () => {
  it("answers NOT_FOUND naming the service and the perspective for a name it does not serve", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR, { service: "counter", perspective: "admin" }]);
    const { identity } = await h.login("alice", "alice pass");
    const err = await rejection(identity.attach({ service: "counter", perspective: "admin", client: null }));
    expect(err.code).toBe(ErrorCode.NOT_FOUND);
    expect(err.message).toBe('the counter service has no perspective "admin"');
    expect(counterOf(h).log).toEqual([]);
    // The perspective it does serve still attaches.
    expect((await attach(identity, COUNTER).hello()).greeting).toBe("alice counted 0");
  });

  it("refuses anonymous logins with PERMISSION_DENIED unless the service sets allowAnonymous", async () => {
    h = await makeHarness({
      services: [counter(), counter({ name: OPEN_COUNTER.service, allowAnonymous: true })],
      anonymousKeyring: [COUNTER_PAIR, OPEN_COUNTER_PAIR],
    });
    const { root } = h.connect();
    const { identity } = await root.loginAnonymous();
    const err = await rejection(identity.attach({ service: "counter", perspective: "device", client: null }));
    expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
    expect(err.message).toBe("anonymous logins cannot attach the counter service");
    expect(counterOf(h).log).toEqual([]);
    expect((await attach(identity, OPEN_COUNTER).hello()).greeting).toBe("anonymous counted 0");
    expect(counterOf(h, OPEN_COUNTER.service).log).toEqual(["new anonymous", "attach anonymous"]);
  });

  it("makes a user's state once however many devices attach, and forgets it once after the last", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const id = await idOf("alice");
    const devices = [await device("alice"), await device("alice"), await device("alice")];
    for (const d of devices) await d.member.hello();
    const service = counterOf(h);
    expect(service.log).toEqual(["new alice", "attach alice", "attach alice", "attach alice"]);
    expect(service.attachedOf(id).size).toBe(3);
    expect(service.userCount).toBe(1);
    await devices[0]?.room.say({ text: "one" });
    expect((await devices[2]?.member.hello())?.greeting).toBe("alice counted 1");
    for (const d of devices) await d.member.detach();
    expect(service.log.filter((l) => l.startsWith("forget"))).toEqual(["forget alice"]);
    expect(service.log.at(-1)).toBe("forget alice");
    expect(service.userOf(id)).toBeUndefined();
  });

  const endings: Array<{
    kind: DetachKind;
    how: string;
    end: (d: Awaited<ReturnType<typeof device>>) => unknown;
  }> = [
    { kind: "detached", how: "detach()", end: (d) => d.member.detach() },
    {
      kind: "released",
      how: "letting go of every stub",
      end: (d) => {
        d.room.dispose();
        d.member.dispose();
      },
    },
    { kind: "disconnected", how: "closing the connection", end: (d) => d.client.close() },
    { kind: "revoked", how: "logging out", end: (d) => d.identity.logout() },
  ];

  it.each(endings)(
    "forgets the user exactly once when the last device ends by $how, and onDetached sees $kind each time",
    async ({ kind, end }) => {
      h = await makeHarness({ services: [counter()] });
      await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
      const service = counterOf(h);
      const phone = await device("alice");
      const laptop = await device("alice");
      await phone.room.say({ text: "from the phone" });
      expect((await laptop.member.hello()).greeting).toBe("alice counted 1");
      await end(phone);
      await waitFor(() => expect(service.log).toContain(`detach alice ${kind}`));
      expect(service.log).toEqual(["new alice", "attach alice", "attach alice", `detach alice ${kind}`]);
      // The laptop still has the user's state.
      expect((await laptop.member.hello()).greeting).toBe("alice counted 1");
      await end(laptop);
      await waitFor(() => expect(service.log).toContain("forget alice"));
      expect(service.log.slice(3)).toEqual([`detach alice ${kind}`, `detach alice ${kind}`, "forget alice"]);
      expect(service.reasons.map((r) => r.kind)).toEqual([kind, kind]);
      expect(service.userCount).toBe(0);
      // A new device starts from new state.
      const again = await device("alice");
      expect((await again.member.hello()).greeting).toBe("alice counted 0");
      expect(service.log.slice(6)).toEqual(["new alice", "attach alice"]);
    },
  );

  it("forgets the user once when a password change revokes all their devices at once", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    await h.addUser("bob", "bob pass", [COUNTER_PAIR]);
    const service = counterOf(h);
    const phone = await device("alice");
    const laptop = await device("alice");
    const bob = await device("bob");
    await Promise.all([phone.member.hello(), laptop.member.hello(), bob.member.hello()]);
    const { verifier } = await makeVerifier("alice new pass", { kdf });
    await phone.identity.changePassword({ newVerifier: verifier });
    expect(service.log.filter((l) => l.includes("alice")).slice(-3)).toEqual([
      "detach alice revoked",
      "detach alice revoked",
      "forget alice",
    ]);
    expect(service.reasons.map((r) => `${r.kind}: ${r.message}`)).toEqual([
      "revoked: the password was changed",
      "revoked: the password was changed",
    ]);
    expect((await rejection(laptop.member.hello())).code).toBe(ErrorCode.REVOKED);
    expect((await bob.member.hello()).greeting).toBe("bob counted 0");
    expect(service.userCount).toBe(1);
  });

  it("never shares state between two users", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    await h.addUser("bob", "bob pass", [COUNTER_PAIR]);
    const alice = await device("alice");
    const bob = await device("bob");
    const aliceEar = ear();
    const bobEar = ear();
    await alice.room.listen({ listener: aliceEar.cap });
    await bob.room.listen({ listener: bobEar.cap });
    await alice.room.say({ text: "a1" });
    await bob.room.say({ text: "b1" });
    await alice.room.say({ text: "a2" });
    expect((await alice.member.hello()).greeting).toBe("alice counted 2");
    expect((await bob.member.hello()).greeting).toBe("bob counted 1");
    await Promise.all([aliceEar.until(2), bobEar.until(1)]);
    expect(aliceEar.heard).toEqual(["alice 1: a1", "alice 2: a2"]);
    expect(bobEar.heard).toEqual(["bob 1: b1"]);
    const service = counterOf(h);
    expect(service.userOf(await idOf("alice"))).not.toBe(service.userOf(await idOf("bob")));
  });
});

// ---- serve() ------------------------------------------------------------------------------------

describe("serve()'s owner check", () => {
  it("refuses a perspective relayed to another user with PERMISSION_DENIED, while its owner keeps using it", async () => {
    // A careless service: whoever attaches gets the `client` capability the previous attacher sent.
    let kept: LobbyMember | null = null;
    class Relay extends Perspective {
      capability() {
        return kept === null ? LobbyMember.server(this as unknown as LobbyMember$Server) : kept.dup();
      }
      override attached(client: Capability | null): Perspective {
        if (client !== null) kept = client.castAs(LobbyMember);
        return this;
      }
    }
    const relay: Service = { name: "relay", getPerspectiveForIdentity: () => new Relay() };
    h = await makeHarness({ services: [counter(), serviceModule(relay)] });
    const both = [COUNTER_PAIR, { service: "relay", perspective: "x" }];
    await h.addUser("alice", "alice pass", both);
    await h.addUser("bob", "bob pass", both);
    const alice = await device("alice");
    await alice.room.say({ text: "mine" });
    // Alice sends her counter perspective to the server as her callback; the relay keeps it.
    await alice.identity.attach({ service: "relay", perspective: "x", client: alice.member });
    const bob = await h.login("bob", "bob pass");
    const relayed = bob.identity.attach({ service: "relay", perspective: "x", client: null });
    const viaRelay = (await relayed).perspective.castAs(LobbyMember);
    relayed.dispose();
    for (const call of [viaRelay.hello(), viaRelay.room().room.say({ text: "as alice?" })]) {
      const denied = await rejection(call);
      expect(denied.code).toBe(ErrorCode.PERMISSION_DENIED);
      expect(denied.message).toBe("this counter perspective belongs to another user");
    }
    // Alice's own stub works, and Bob's attempts changed nothing of hers.
    expect((await alice.member.hello()).greeting).toBe("alice counted 1");
    expect((await alice.room.say({ text: "still mine" })).line.text).toBe("2");
    expect(counterOf(h).userOf(await idOf("bob"))).toBeUndefined();
  });
});

// ---- Notifier and bus, in a service -------------------------------------------------------------

describe("a service's listeners (Notifier over the bus)", () => {
  it("keeps the other device's listener when one device detaches", async () => {
    h = await makeHarness({ services: [counter()] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const phone = await device("alice");
    const laptop = await device("alice");
    const phoneEar = ear();
    const laptopEar = ear();
    await phone.room.listen({ listener: phoneEar.cap });
    await laptop.room.listen({ listener: laptopEar.cap });
    await phone.room.say({ text: "both" });
    await Promise.all([phoneEar.until(1), laptopEar.until(1)]);
    await laptop.member.detach();
    // The laptop's listener was dropped and released; the phone's stays.
    await waitFor(() => expect(laptop.client.stats().exports).toBe(0));
    expect(counterOf(h).userOf(await idOf("alice"))?.listeners.size).toBe(1);
    await phone.room.say({ text: "phone only" });
    await phoneEar.until(2);
    expect(phoneEar.heard).toEqual(["alice 1: both", "alice 2: phone only"]);
    expect(laptopEar.heard).toEqual(["alice 1: both"]);
  });

  it("answers QUOTA for listeners beyond the per-device cap, and disposes the refused one", async () => {
    h = await makeHarness({ services: [counter({ maxListenersPerDevice: 2 })] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const phone = await device("alice");
    const [one, two, three] = [ear(), ear(), ear()];
    await phone.room.listen({ listener: one.cap });
    await phone.room.listen({ listener: two.cap });
    const err = await rejection(phone.room.listen({ listener: three.cap }));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(err.message).toContain("at most 2");
    // The server let go of the refused listener: the phone exports the two accepted ones only.
    await waitFor(() => expect(phone.client.stats().exports).toBe(2));
    // The cap is per device: another device of the same user has its own room.
    const laptop = await device("alice");
    await laptop.room.listen({ listener: three.cap });
    await phone.room.say({ text: "x" });
    await Promise.all([one.until(1), two.until(1), three.until(1)]);
    expect([one.heard, two.heard, three.heard]).toEqual([["alice 1: x"], ["alice 1: x"], ["alice 1: x"]]);
  });

  it("delivers each event once to a client capability registered many times from one device", async () => {
    h = await makeHarness({ services: [counter({ maxListenersPerDevice: 2 })] });
    await h.addUser("alice", "alice pass", [COUNTER_PAIR]);
    const phone = await device("alice");
    const e = ear();
    await Promise.all(Array.from({ length: 25 }, () => phone.room.listen({ listener: e.cap })));
    expect(counterOf(h).userOf(await idOf("alice"))?.listeners.size).toBe(1);
    expect(phone.server.stats().imports).toBe(1);
    await phone.room.say({ text: "one" });
    await phone.room.say({ text: "two" });
    // In order on one connection: a duplicate of "one" would arrive before "two".
    await e.until(2);
    expect(e.heard).toEqual(["alice 1: one", "alice 2: two"]);
  });
});
