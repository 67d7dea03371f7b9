/**
 * The lobby (schema/lobby.capnp): the smallest real service. Each user attaches ("lobby",
 * "member") and gets their own LobbyMember perspective; the Room is one Viewable shared by all,
 * which learns who speaks from the Perspective the broker passes it.
 *
 * Invariants: a line's speaker is always the name of the perspective the call came through;
 * history is bounded (last 1000 lines); listeners are dropped when their member detaches.
 */
import type { CallContext } from "../../caps/index.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { type IdentityView, Perspective, type Service, viewable } from "../../login/index.js";
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

const MAX_TEXT_CHARS = 1000;
const MAX_HISTORY = 1000;
const MAX_HISTORY_READ = 100;

export class MemberPerspective extends Perspective implements LobbyMember$Server {
  /** Listeners this member registered, dropped when the member detaches. */
  readonly listeners = new Set<RoomListener>();

  constructor(
    readonly lobby: LobbyService,
    readonly identity: IdentityView,
  ) {
    super();
  }

  capability(): LobbyMember {
    return LobbyMember.server(this);
  }

  override detached(): void {
    for (const l of this.listeners) l.dispose();
    this.listeners.clear();
  }

  hello() {
    return { greeting: `hello, ${this.identity.name}` };
  }

  room() {
    return { room: this.lobby.room };
  }
}

class RoomViewable {
  readonly lines: Line$Shape[] = [];

  constructor(private readonly lobby: LobbyService) {}

  say(member: MemberPerspective, params: Room_say_Params) {
    const text = params.text;
    if (text.length > MAX_TEXT_CHARS) {
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `a line has at most ${MAX_TEXT_CHARS} characters`);
    }
    const line = { speaker: member.identity.name, text, at: BigInt(Date.now()) };
    this.lines.push(line);
    if (this.lines.length > MAX_HISTORY) this.lines.shift();
    for (const m of this.lobby.members()) {
      for (const l of m.listeners) l.said({ line }).catch(() => m.listeners.delete(l));
    }
    return { line };
  }

  history(_member: MemberPerspective, params: Room_history_Params) {
    const n = Math.min(params.count, MAX_HISTORY_READ);
    return { lines: n === 0 ? [] : this.lines.slice(-n) };
  }

  listen(member: MemberPerspective, params: Room_listen_Params, _ctx: CallContext) {
    member.listeners.add(params.listener);
  }
}

export class LobbyService implements Service {
  readonly name = "lobby";
  readonly #members = new Map<number, MemberPerspective>();
  readonly room: Room;

  constructor() {
    this.room = Room.server(
      viewable<Room$Server, MemberPerspective>(new RoomViewable(this), (p) => p instanceof MemberPerspective),
    );
  }

  getPerspectiveForIdentity(perspectiveName: string, identity: IdentityView): MemberPerspective {
    if (perspectiveName !== "member") {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `the lobby has no perspective "${perspectiveName}"`);
    }
    let member = this.#members.get(identity.id);
    if (member === undefined) {
      member = new MemberPerspective(this, identity);
      this.#members.set(identity.id, member);
    }
    return member;
  }

  members(): Iterable<MemberPerspective> {
    return this.#members.values();
  }
}
