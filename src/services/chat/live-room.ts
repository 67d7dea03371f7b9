/**
 * `LiveRoom`: one chat room in memory while it is in use — its record, its current members, the
 * window of its newest messages (`LiveLog`) and the per-device listeners on it — always a copy of
 * what the store committed, never ahead of it.
 *
 * Invariants:
 * - Memory follows the store: a member record or message is applied only from a committed write's
 *   answer (in commit order) or from a snapshot (`load`); while loading, answers are queued and
 *   applied after the snapshot, so nothing committed during the load is lost.
 * - A listener belongs to one device (the `owner`, a ChatMember perspective) and one membership
 *   (identity and membership epoch). When that membership ends or is renewed, every listener of it
 *   on every device hears `closed` and is dropped; removing a device's listeners touches no other
 *   device's.
 * - Typing and presence notices go only to listeners of members, typing to the others only, and
 *   are told again at most once a second per typer (`typingRepeatMs`).
 *
 * Tests: test/services/chat/chat-service.test.ts, test/services/chat/chat-recovery.test.ts
 */
import { capabilityKey } from "../../login/index.js";
import type { ChatMemberRecord, ChatMessageRecord, ChatRoomRecord } from "../../store/index.js";
import type { Presence$Shape, RoomListener } from "../../wire/gen/chat.js";
import { writeMessage } from "./chat-wire.js";
import { LiveLog, LogReader } from "./live-log.js";

/** What a message costs in memory, roughly: its strings as UTF-16 and the record around them. */
export function messageBytes(m: { readonly text: string }): number {
  return 2 * m.text.length + 128;
}

/** One device's listener on one membership of this room. */
export interface RoomSubscription {
  readonly owner: object;
  readonly identityId: number;
  readonly membershipEpoch: number;
  readonly reader: LogReader<ChatMessageRecord, RoomListener>;
  /** Runs once when the subscription is dropped, for whatever reason. */
  readonly onDropped: () => void;
}

export interface LiveRoomLimits {
  readonly window: number;
  /** Bytes of messages the window holds (`messageBytes`); the oldest go beyond. */
  readonly windowBytes: number;
  readonly maxNotificationsInFlight: number;
  readonly maxEphemeralInFlight: number;
  readonly typingRepeatMs: number;
}

export class LiveRoom {
  record: ChatRoomRecord | undefined;
  readonly log: LiveLog<ChatMessageRecord>;
  readonly members = new Map<number, ChatMemberRecord>();
  readonly subscriptions = new Set<RoomSubscription>();
  readonly #typing = new Map<number, { until: number; toldAt: number }>();
  #queue: Array<() => void> | undefined = [];
  /** Writes in flight through this room (it is not evicted meanwhile). */
  busy = 0;
  /** Set once loading found no such room. */
  gone = false;
  ready: Promise<void> = Promise.resolve();

  constructor(
    readonly id: number,
    readonly limits: LiveRoomLimits,
  ) {
    this.log = new LiveLog<ChatMessageRecord>(limits.window, {
      maxBytes: limits.windowBytes,
      sizeOf: messageBytes,
    });
    this.log.onAppend = (m) => {
      for (const s of this.subscriptions) s.reader.offer(m);
    };
  }

  get loaded(): boolean {
    return this.#queue === undefined;
  }

  get name(): string {
    return this.record?.name ?? `#${this.id}`;
  }

  get lastSeq(): number {
    return this.log.lastSeq;
  }

  /** The snapshot, then every answer that arrived while it was read. */
  load(snapshot: {
    room: ChatRoomRecord;
    members: readonly ChatMemberRecord[];
    messages: readonly ChatMessageRecord[];
  }): void {
    this.record = snapshot.room;
    for (const m of snapshot.members) this.members.set(m.identityId, m);
    this.log.load(snapshot.messages);
    const queued = this.#queue ?? [];
    this.#queue = undefined;
    for (const fn of queued) fn();
  }

  /** Runs `fn` now, or after the load if the room is still loading. */
  apply(fn: () => void): void {
    if (this.#queue === undefined) fn();
    else this.#queue.push(fn);
  }

  /** The current membership of `identityId` at `epoch`, if it is. */
  current(identityId: number, epoch: number): ChatMemberRecord | undefined {
    const m = this.members.get(identityId);
    return m !== undefined && m.epoch === epoch ? m : undefined;
  }

  message(m: ChatMessageRecord): void {
    if (this.record !== undefined && m.seq > this.record.lastSeq)
      this.record = { ...this.record, lastSeq: m.seq };
    this.log.arrived(m);
  }

  /** A committed membership record; ends the listeners of an ended or renewed membership. */
  member(rec: ChatMemberRecord, reason: string): void {
    const known = this.members.get(rec.identityId);
    if (known !== undefined && known.epoch > rec.epoch) return; // older than what memory holds
    if (rec.active) this.members.set(rec.identityId, rec);
    else this.members.delete(rec.identityId);
    for (const s of [...this.subscriptions]) {
      if (s.identityId === rec.identityId && (!rec.active || s.membershipEpoch !== rec.epoch)) {
        this.unsubscribe(s, reason);
      }
    }
  }

  /**
   * Registers `listener` (owned from now on) for `owner`'s device, starting after `after`.
   * False, with the listener disposed, if the same capability listens to this membership already.
   */
  subscribe(
    owner: object,
    identityId: number,
    membershipEpoch: number,
    listener: RoomListener,
    after: number,
    onDropped: (s: RoomSubscription) => void,
  ): RoomSubscription | undefined {
    const key = capabilityKey(listener);
    for (const s of this.subscriptions) {
      if (s.owner === owner && capabilityKey(s.reader.listener) === key) {
        listener.dispose();
        return undefined;
      }
    }
    const name = this.name;
    const reader: LogReader<ChatMessageRecord, RoomListener> = new LogReader({
      log: this.log,
      listener,
      maxInFlight: this.limits.maxNotificationsInFlight,
      maxEphemeralInFlight: this.limits.maxEphemeralInFlight,
      deliver: (l, m) => l.message({ message: writeMessage(name, m) }),
      unrecoverable: (l, a, from) => l.unrecoverable({ after: BigInt(a), resumedFrom: BigInt(from) }),
      onFailed: () => {
        if (this.subscriptions.delete(sub)) sub.onDropped();
      },
    });
    const sub: RoomSubscription = {
      owner,
      identityId,
      membershipEpoch,
      reader,
      onDropped: () => onDropped(sub),
    };
    this.subscriptions.add(sub);
    reader.start(after, this.log.lastSeq);
    return sub;
  }

  /** Drops `s`, telling it why unless `reason` is undefined (a disconnect). */
  unsubscribe(s: RoomSubscription, reason: string | undefined): void {
    if (!this.subscriptions.delete(s)) return;
    s.reader.close(reason === undefined ? undefined : (l) => l.closed({ reason }));
    s.onDropped();
  }

  /** `identityId` is typing until `now + typingMs`; tells the other members' listeners. */
  typing(identityId: number, user: string, now: number, typingMs: number): void {
    const until = now + typingMs;
    const t = this.#typing.get(identityId);
    if (t !== undefined && t.until > now && now - t.toldAt < this.limits.typingRepeatMs) {
      t.until = until;
      return;
    }
    this.#typing.set(identityId, { until, toldAt: now });
    for (const s of this.subscriptions) {
      if (s.identityId !== identityId) s.reader.notice((l) => l.typing({ user, until: BigInt(until) }));
    }
    // Forget typers whose time is over (the map stays as small as the typers of the moment).
    for (const [id, x] of this.#typing) if (x.until <= now) this.#typing.delete(id);
  }

  /** Tells every listener of this room that a member's presence changed. */
  presence(p: Presence$Shape): void {
    for (const s of this.subscriptions) s.reader.notice((l) => l.presence({ presence: p }));
  }

  /** Drops every listener (the service is closing). */
  close(): void {
    for (const s of [...this.subscriptions]) this.unsubscribe(s, undefined);
  }
}
