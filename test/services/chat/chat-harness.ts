/**
 * Chat on the login harness: users with the chat pair, one device per login (its own connection),
 * and listeners that record what they hear. Every test that uses it is a leak test through
 * `h.close()` (tables empty, attachments balanced).
 */
import { attach } from "../../../src/login/index.js";
import { CHAT_MEMBER } from "../../../src/services/chat/chat-keys.js";
import { type ChatOptions, ChatService, chat } from "../../../src/services/chat/chat-service.js";
import type { KeyringPair, SqliteBrokerStore } from "../../../src/store/index.js";
import type { Capability, CapabilityCtor } from "../../../src/caps/index.js";
import { Perspective, type Service, type ServiceModule, serviceModule } from "../../../src/login/index.js";
import type { RpcConnection } from "../../../src/rpc/index.js";
import type { Identity, Perspective as PerspectiveStub } from "../../../src/wire/gen/broker.js";
import {
  type ChatMember,
  InboxListener,
  type Message,
  MessageKind,
  type RoomKind,
  RoomListener,
  type RoomMember,
  type Invitation,
} from "../../../src/wire/gen/chat.js";
import { type Harness, makeHarness } from "../../login/harness.js";

export const CHAT_KEYRING: KeyringPair[] = [
  { service: CHAT_MEMBER.service, perspective: CHAT_MEMBER.perspective },
];

export interface Device {
  readonly name: string;
  readonly identity: Identity;
  readonly chat: ChatMember;
  readonly client: RpcConnection;
  readonly server: RpcConnection;
  /** Drops the connection (as a network failure would). */
  readonly drop: () => void;
}

export interface ChatWorld {
  readonly h: Harness;
  /** Creates `name` (password `${name} pass`) and logs in a first device. */
  user(name: string, keyring?: readonly KeyringPair[]): Promise<Device>;
  /** Logs `name` in again: another device, on its own connection. */
  device(name: string): Promise<Device>;
  service(): ChatService;
}

export async function makeChat(
  options: ChatOptions = {},
  harness: { store?: SqliteBrokerStore; extra?: ServiceModule[] } = {},
): Promise<ChatWorld> {
  const h = await makeHarness({
    services: [chat(options), ...(harness.extra ?? [])],
    ...(harness.store === undefined ? {} : { store: harness.store }),
  });
  const device = async (name: string): Promise<Device> => {
    const { identity, client, server } = await h.login(name, `${name} pass`);
    return {
      name,
      identity,
      client,
      server,
      chat: attach(identity, CHAT_MEMBER),
      drop: () => client.close(),
    };
  };
  return {
    h,
    async user(name, keyring = CHAT_KEYRING) {
      await h.addUser(name, `${name} pass`, keyring);
      return device(name);
    },
    device,
    service() {
      const s = h.broker.service("chat");
      if (!(s instanceof ChatService)) throw new Error("no chat service");
      return s;
    },
  };
}

export interface Heard {
  readonly seq: number;
  readonly author: string;
  readonly text: string;
  readonly kind: MessageKind;
}

const heardOf = (m: Message): Heard => ({ seq: Number(m.seq), author: m.author, text: m.text, kind: m.kind });

/** Resolves waiters once a count is reached. */
function counter() {
  const waiting: Array<{ n: () => boolean; resolve: () => void }> = [];
  return {
    wake() {
      for (const w of [...waiting]) {
        if (w.n()) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve();
        }
      }
    },
    until(test: () => boolean): Promise<void> {
      return test() ? Promise.resolve() : new Promise((resolve) => waiting.push({ n: test, resolve }));
    },
  };
}

/**
 * A RoomListener recording everything; `hold` keeps every message answer back (a listener that
 * does not answer) until `release`.
 */
export function ear(options: { hold?: boolean } = {}) {
  const messages: Heard[] = [];
  const typing: string[] = [];
  const presence: string[] = [];
  const unrecoverable: Array<[number, number]> = [];
  const closed: string[] = [];
  const held: Array<() => void> = [];
  const c = counter();
  let hold = options.hold ?? false;
  const cap = RoomListener.server({
    message({ message }) {
      messages.push(heardOf(message));
      c.wake();
      return hold ? new Promise<void>((resolve) => held.push(resolve)) : undefined;
    },
    typing({ user, until }) {
      typing.push(`${user} ${until}`);
      c.wake();
    },
    presence({ presence: p }) {
      presence.push(`${p.user} ${p.status}`);
      c.wake();
    },
    unrecoverable({ after, resumedFrom }) {
      unrecoverable.push([Number(after), Number(resumedFrom)]);
      c.wake();
    },
    closed({ reason }) {
      closed.push(reason);
      c.wake();
    },
  });
  return {
    cap,
    messages,
    typing,
    presence,
    unrecoverable,
    closed,
    texts: () => messages.filter((m) => m.kind === MessageKind.TEXT).map((m) => `${m.author}: ${m.text}`),
    seqs: () => messages.map((m) => m.seq),
    /** Resolves once `n` messages were heard. */
    until: (n: number) => c.until(() => messages.length >= n),
    untilText: (n: number) => c.until(() => messages.filter((m) => m.kind === MessageKind.TEXT).length >= n),
    untilClosed: () => c.until(() => closed.length > 0),
    untilTyping: (n: number) => c.until(() => typing.length >= n),
    untilPresence: (n: number) => c.until(() => presence.length >= n),
    untilUnrecoverable: () => c.until(() => unrecoverable.length > 0),
    release: () => {
      hold = false;
      for (const r of held.splice(0)) r();
    },
  };
}

/** An InboxListener recording messages and invitations (the invitations it keeps, as stubs). */
export function inboxEar() {
  const messages: Heard[] = [];
  const invitations: Invitation[] = [];
  const unrecoverable: Array<[number, number]> = [];
  const c = counter();
  const cap = InboxListener.server({
    message({ message }) {
      messages.push(heardOf(message));
      c.wake();
    },
    invited({ invitation }) {
      invitations.push(invitation);
      c.wake();
    },
    unrecoverable({ after, resumedFrom }) {
      unrecoverable.push([Number(after), Number(resumedFrom)]);
      c.wake();
    },
  });
  return {
    cap,
    messages,
    invitations,
    unrecoverable,
    until: (n: number) => c.until(() => messages.length >= n),
    untilInvited: (n: number) => c.until(() => invitations.length >= n),
    dispose: () => {
      for (const i of invitations) i.dispose();
    },
  };
}

/** Creates a room and keeps its member facet (the results are released). */
export async function createRoom(
  d: Device,
  name: string,
  kind: RoomKind,
  listener: RoomListener | null = null,
): Promise<RoomMember> {
  const call = d.chat.createRoom({ name, kind, topic: `about ${name}`, options: { listener } });
  const member = call.member.dup();
  await call;
  call.dispose();
  return member;
}

/** Joins a room and keeps its member facet. */
export async function join(
  d: Device,
  room: string,
  listener: RoomListener | null = null,
  resumeAfter = 0n,
): Promise<RoomMember> {
  const call = d.chat.join({ room, options: { listener, resumeAfter } });
  const member = call.member.dup();
  try {
    await call;
  } catch (err) {
    member.dispose();
    throw err;
  } finally {
    call.dispose();
  }
  return member;
}

export const texts = (messages: { toArray(): Message[] }): string[] =>
  messages
    .toArray()
    .filter((m) => m.kind === MessageKind.TEXT)
    .map((m) => `${m.author}: ${m.text}`);

/**
 * A careless service for tests: every attacher of ("relay", "x") gets the `client` capability
 * the last attacher sent — how a capability one user holds reaches another over the wire.
 */
export function relay(): ServiceModule {
  let kept: Capability | null = null;
  class RelayPerspective extends Perspective {
    capability(): PerspectiveStub {
      return (kept as Capability).dup() as unknown as PerspectiveStub;
    }
    override attached(client: Capability | null): Perspective {
      if (client !== null) {
        kept?.dispose();
        kept = client.dup();
      }
      return this;
    }
  }
  const service: Service = {
    name: "relay",
    getPerspectiveForIdentity: () => new RelayPerspective(),
    close: () => {
      kept?.dispose();
      kept = null;
    },
  };
  return serviceModule(service);
}

export const RELAY_PAIR: KeyringPair = { service: "relay", perspective: "x" };

/** Sends `cap` to the relay as `from`'s callback, then hands it to `to`: `to`'s stub of it. */
export async function handOver<C extends Capability>(
  from: Device,
  to: Device,
  cap: C,
  Ctor: CapabilityCtor<C>,
): Promise<C> {
  const sent = from.identity.attach({ ...RELAY_PAIR, client: cap });
  await sent;
  sent.dispose();
  const got = to.identity.attach({ ...RELAY_PAIR, client: null });
  const stub = (await got).perspective.castAs(Ctor);
  got.dispose();
  return stub;
}
