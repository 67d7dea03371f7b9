/**
 * The users of the fan-out bench rows (`router-fanout`, `chat-room-1000`), named here so that the
 * server process (which registers them with their public keys, `server.ts --chat`) and the client
 * process (which logs them in by key, `client.ts`) agree without exchanging anything. Their keys
 * come from `benchKey` (bank-keys.ts): bench use only, anyone can derive them.
 */

/** Router subscribers: users, and router sessions each of them attaches (one per subscription). */
export const ROUTER_SUBSCRIBER_USERS = 20;
export const ROUTER_SESSIONS_PER_USER = 50;
export const routerSubscriberName = (i: number): string => `bench-router-sub-${i}`;
export const ROUTER_PUBLISHER = "bench-router-pub";

/** Members of the 1 000-member room: membership is per user, so one user each. */
export const ROOM_MEMBERS = 1000;
export const memberName = (i: number): string => `bench-member-${i}`;

/** Every name `server.ts --chat` registers. */
export function fanoutUsers(): string[] {
  return [
    ROUTER_PUBLISHER,
    ...Array.from({ length: ROUTER_SUBSCRIBER_USERS }, (_, i) => routerSubscriberName(i)),
    ...Array.from({ length: ROOM_MEMBERS }, (_, i) => memberName(i)),
  ];
}

/** Posts a second each chat member may make on the bench server (the service's default is 10). */
export const BENCH_CHAT_MESSAGES_PER_SECOND = 10_000;
