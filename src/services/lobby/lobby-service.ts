/**
 * The lobby (schema/lobby.capnp): the smallest real service, and the worked example of the
 * service kit. Each attachment of ("lobby", "member") gets its own MemberPerspective (one per
 * device); the Room is one Viewable shared by all, which learns who speaks from the Perspective
 * the broker passes it. Lines go out through the event bus to a bounded Notifier.
 *
 * Invariants:
 * - A line's speaker is always the name of the perspective the call came through, its time the
 *   service's clock.
 * - History is bounded (`maxHistory` lines); a line is at most `maxLineChars` characters.
 * - Listeners are registered per attachment (at most `maxListenersPerMember`, one per client
 *   capability), get at most `maxNotificationsInFlight` unanswered lines each, and go when their
 *   own attachment ends: one device leaving never silences another.
 *
 * Tests: test/services/lobby/lobby-service.test.ts
 */
import type { CallContext } from "../../caps/index.js";
import type { Clock } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  type DetachReason,
  type EventBus,
  type IdentityView,
  Notifier,
  PerUserService,
  type ServiceModule,
  topic,
  UserPerspective,
  viewable,
} from "../../login/index.js";
import {
  type Line$Shape,
  LobbyMember,
  type LobbyMember$Server,
  Room,
  type Room$Server,
  type Room_history_Params,
  type Room_listen_Params,
  type Room_say_Params,
  type RoomListener,
} from "../../wire/gen/lobby.js";
import { LOBBY_MEMBER } from "./lobby-keys.js";

export interface LobbyOptions {
  /** Longest line, in characters. Default 1000. */
  readonly maxLineChars?: number;
  /** Lines kept for `history`. Default 1000. */
  readonly maxHistory?: number;
  /** Most lines one `history` call returns. Default 100. */
  readonly maxHistoryRead?: number;
  /** Listeners one attachment may register. Default 4. */
  readonly maxListenersPerMember?: number;
  /** Unanswered lines one listener may have before further lines are dropped for it. Default 32. */
  readonly maxNotificationsInFlight?: number;
}

/** A line as it travels on the bus (JSON-compatible: the time is a number). */
interface SaidEvent {
  readonly speaker: string;
  readonly text: string;
  readonly at: number;
}

/** Every line said in the lobby, published by the room and delivered by the notifier. */
export const LOBBY_SAID = topic<SaidEvent>("lobby.said");

/** The lobby as a module for `startBroker({ services: [lobby()] })`. */
export function lobby(options: LobbyOptions = {}): ServiceModule<LobbyService> {
  return {
    name: LOBBY_MEMBER.service,
    defaultKeyring: [LOBBY_MEMBER],
    create: (ctx) => new LobbyService(ctx, options),
  };
}

export class LobbyService extends PerUserService<null, MemberPerspective> {
  readonly name = LOBBY_MEMBER.service;
  override readonly allowAnonymous = true;
  readonly room: Room;
  readonly listeners: Notifier<RoomListener, SaidEvent>;
  readonly #unsubscribe: () => void;

  constructor(context: { readonly clock: Clock; readonly bus: EventBus }, options: LobbyOptions = {}) {
    super();
    this.listeners = new Notifier<RoomListener, SaidEvent>({
      maxInFlight: options.maxNotificationsInFlight ?? 32,
      maxPerOwner: options.maxListenersPerMember ?? 4,
      deliver: (l, e) => l.said({ line: { speaker: e.speaker, text: e.text, at: BigInt(e.at) } }),
    });
    this.#unsubscribe = context.bus.subscribe(LOBBY_SAID, (e) => this.listeners.notify(e));
    const room = new RoomViewable(this.listeners, context, options);
    this.room = Room.server(
      viewable<Room$Server, MemberPerspective>(room, (p) => p instanceof MemberPerspective),
    );
  }

  protected newPerspective(name: string, identity: IdentityView): MemberPerspective | undefined {
    return name === LOBBY_MEMBER.perspective ? new MemberPerspective(this, identity) : undefined;
  }

  protected newUser(): null {
    return null;
  }

  close(): void {
    this.#unsubscribe();
    this.listeners.clear();
  }
}

/** One attachment of ("lobby", "member"): one user on one device. */
export class MemberPerspective extends UserPerspective<null> implements LobbyMember$Server {
  constructor(
    readonly lobby: LobbyService,
    identity: IdentityView,
  ) {
    super(lobby, identity);
  }

  capability(): LobbyMember {
    return LobbyMember.server(this.serve<LobbyMember$Server>());
  }

  protected override onDetached(reason: DetachReason): void {
    this.lobby.listeners.removeOwner(this, reason);
  }

  hello() {
    return { greeting: `hello, ${this.identity.name}` };
  }

  room() {
    return { room: this.lobby.room };
  }
}

/** The Room, as a Viewable: every method learns the caller's MemberPerspective from the broker. */
class RoomViewable {
  readonly #lines: Line$Shape[] = [];
  readonly #clock: Clock;
  readonly #bus: EventBus;
  readonly #maxLineChars: number;
  readonly #maxHistory: number;
  readonly #maxHistoryRead: number;

  constructor(
    private readonly listeners: Notifier<RoomListener, SaidEvent>,
    context: { readonly clock: Clock; readonly bus: EventBus },
    options: LobbyOptions,
  ) {
    this.#clock = context.clock;
    this.#bus = context.bus;
    this.#maxLineChars = options.maxLineChars ?? 1000;
    this.#maxHistory = options.maxHistory ?? 1000;
    this.#maxHistoryRead = options.maxHistoryRead ?? 100;
  }

  say(member: MemberPerspective, params: Room_say_Params) {
    const text = params.text;
    if (text.length > this.#maxLineChars) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a line has at most ${this.#maxLineChars} characters`);
    }
    const speaker = member.identity.name;
    const at = this.#clock.now();
    const line = { speaker, text, at: BigInt(at) };
    this.#lines.push(line);
    if (this.#lines.length > this.#maxHistory) this.#lines.shift();
    void this.#bus.publish(LOBBY_SAID, { speaker, text, at });
    return { line };
  }

  history(_member: MemberPerspective, params: Room_history_Params) {
    const n = Math.min(params.count, this.#maxHistoryRead);
    return { lines: n === 0 ? [] : this.#lines.slice(-n) };
  }

  listen(member: MemberPerspective, params: Room_listen_Params, _ctx: CallContext) {
    this.listeners.add(member, params.listener);
  }
}
