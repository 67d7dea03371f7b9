/**
 * Fixtures for the router's pub/sub and procedure tests: session refs made directly from rule
 * letters, and client capabilities (event handlers) served by local objects that record what
 * they receive and answer when the test says so.
 */
import { ruleFromLetters, type UriMatchName } from "../../../src/login/uri-permissions.js";
import { RouterSessionRef } from "../../../src/services/router/session.js";
import { EventHandler } from "../../../src/wire/gen/router.js";

export type RuleSpec = readonly [uri: string, match: UriMatchName, letters: string];

/** Everything allowed everywhere. */
export const ALL: readonly RuleSpec[] = [["", "prefix", "crps"]];

let nextSession = 1;

/** A session of `authid` in `role` with these role rules (and, for an API key, key rules). */
export function sessionRef(
  authid: string,
  role: string,
  rules: readonly RuleSpec[] = ALL,
  keyRules?: readonly RuleSpec[],
): RouterSessionRef {
  const n = nextSession++;
  return new RouterSessionRef(
    n,
    1000 + n,
    authid,
    role,
    rules.map(([u, m, l]) => ruleFromLetters(u, m, l)),
    keyRules?.map(([u, m, l]) => ruleFromLetters(u, m, l)),
  );
}

export interface SeenEvent {
  readonly topic: string;
  readonly seq: number;
  readonly publisher: { authid: string; role: string; session: number };
  readonly args: string;
  readonly kwargs: string;
  readonly at: number;
  readonly retained: boolean;
}

/** What a handler heard, in order: events, and `lost after..resumedFrom` notices. */
export type Heard = SeenEvent | { readonly lost: readonly [after: number, resumedFrom: number] };

/**
 * An event handler served locally. `manual`: calls stay unanswered until `release()`; `fail`:
 * every call throws. The handler's `disposed` turns true when its last reference goes.
 */
export function recorder(options: { manual?: boolean } = {}) {
  const heard: Heard[] = [];
  const waiting: Array<() => void> = [];
  const state = { disposed: false, fail: false, maxUnanswered: 0, unanswered: 0 };
  const answer = (): Promise<void> | undefined => {
    if (state.fail) throw new Error("handler broke");
    if (options.manual !== true) return undefined;
    state.unanswered++;
    state.maxUnanswered = Math.max(state.maxUnanswered, state.unanswered);
    return new Promise<void>((resolve) =>
      waiting.push(() => {
        state.unanswered--;
        resolve();
      }),
    );
  };
  const impl = {
    event: ({ event: e }: Parameters<EventHandlerImpl["event"]>[0]) => {
      const p = e.publisher;
      heard.push({
        topic: e.topic,
        seq: Number(e.seq),
        publisher: { authid: p.authid, role: p.role, session: Number(p.session) },
        args: e.payload.args,
        kwargs: e.payload.kwargs,
        at: Number(e.at),
        retained: e.retained,
      });
      return answer();
    },
    unrecoverable: ({ after, resumedFrom }: Parameters<EventHandlerImpl["unrecoverable"]>[0]) => {
      heard.push({ lost: [Number(after), Number(resumedFrom)] });
      return answer();
    },
    [Symbol.dispose]: () => {
      state.disposed = true;
    },
  };
  const handler = EventHandler.server(impl);
  return {
    handler,
    heard,
    state,
    /** The events heard (notices left out). */
    get events(): SeenEvent[] {
      return heard.filter((h): h is SeenEvent => !("lost" in h));
    },
    get seqs(): number[] {
      return heard.filter((h): h is SeenEvent => !("lost" in h)).map((e) => e.seq);
    },
    get pending(): number {
      return waiting.length;
    },
    /** Answers every call waiting now. */
    release: () => {
      for (const w of waiting.splice(0)) w();
    },
  };
}

type EventHandlerImpl = Parameters<typeof EventHandler.server>[0];

/** Lets every pending promise chain and local call run. */
export const settle = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** Answers a manual recorder until nothing is left waiting. */
export async function drain(r: { release(): void; readonly pending: number }): Promise<void> {
  await settle();
  for (let i = 0; i < 10_000 && r.pending > 0; i++) {
    r.release();
    await settle();
  }
}
