/**
 * The Go server on the login harness: users with the player pair, challenges accepted into
 * games, a listener that records events, and helpers to read outcomes. Every test that uses it
 * is a leak test through `h.close()`.
 */
import { attach } from "../../../src/login/index.js";
import { GO_PLAYER } from "../../../src/services/go/go-keys.js";
import { type GoOptions, go } from "../../../src/services/go/go-service.js";
import { lobby } from "../../../src/services/lobby/lobby-service.js";
import type { KeyringPair, SqliteBrokerStore } from "../../../src/store/index.js";
import type { Identity } from "../../../src/wire/gen/broker.js";
import {
  type ChallengeTerms$Shape,
  type Game,
  GameEvent_Which,
  GameListener,
  type GameListener_event_Params,
  MoveOutcome_Which,
  type MoveOutcome,
  type Player,
} from "../../../src/wire/gen/go.js";
import { type Harness, makeHarness } from "../../login/harness.js";

export const PLAYER_KEYRING: KeyringPair[] = [
  { service: GO_PLAYER.service, perspective: GO_PLAYER.perspective },
];

export interface GoUser {
  readonly name: string;
  readonly identity: Identity;
  readonly player: Player;
  readonly close: () => void;
}

export interface GoWorld {
  readonly h: Harness;
  user(name: string): Promise<GoUser>;
  /** Logs `name` in again on a new connection (the user exists). */
  login(name: string): Promise<GoUser>;
  /** `challenger` challenges with `terms`, `acceptor` accepts: both players' Game capabilities. */
  game(
    challenger: GoUser,
    acceptor: GoUser,
    terms?: ChallengeTerms$Shape,
  ): Promise<{ id: bigint; black: Game; white: Game }>;
}

/** 9×9, positional superko, area scoring, komi 6.5, no clock; the challenger plays black. */
export const NINE: ChallengeTerms$Shape = {
  rules: { size: 9, komi: 6.5 },
  time: {},
  ranked: false,
  color: 1,
  opponent: "",
};

export async function makeGo(
  options: GoOptions = {},
  harness: { store?: SqliteBrokerStore } = {},
): Promise<GoWorld> {
  const h = await makeHarness({ services: [lobby(), go(options)], ...harness });
  const login = async (name: string): Promise<GoUser> => {
    const { identity, client } = await h.login(name, `${name} pass`);
    return { name, identity, player: attach(identity, GO_PLAYER), close: () => client.close() };
  };
  return {
    h,
    async user(name) {
      await h.addUser(name, `${name} pass`, PLAYER_KEYRING);
      return login(name);
    },
    login,
    async game(challenger, acceptor, terms = NINE) {
      const { id } = await challenger.player.challenge({ terms });
      const { game } = await acceptor.player.accept({ id });
      const mine = (await challenger.player.game({ id: (await game.info()).info.id })).game;
      const info = (await game.info()).info;
      const challengerBlack = info.black === challenger.name;
      return {
        id: info.id,
        black: challengerBlack ? mine : game,
        white: challengerBlack ? game : mine,
      };
    },
  };
}

const OUTCOMES: Record<number, string> = {
  [MoveOutcome_Which.PLAYED]: "played",
  [MoveOutcome_Which.ILLEGAL]: "illegal",
  [MoveOutcome_Which.ENDED]: "ended",
};

/** `played`, `illegal` or `ended`. */
export const kindOf = (o: MoveOutcome): string => OUTCOMES[o.which()] ?? `unknown ${o.which()}`;

const EVENTS = Object.fromEntries(Object.entries(GameEvent_Which).map(([k, v]) => [v, k.toLowerCase()]));

/** A listener recording each event's kind (`moved`, `chat`, `ended`, …) and its chat lines. */
export function recorder() {
  const kinds: string[] = [];
  const chat: string[] = [];
  const ended: string[] = [];
  const listener = GameListener.server({
    event({ event }: GameListener_event_Params) {
      const w = event.which();
      kinds.push(EVENTS[w] ?? String(w));
      if (w === GameEvent_Which.CHAT) chat.push(`${event.chat.speaker}: ${event.chat.text}`);
      if (w === GameEvent_Which.ENDED) ended.push(event.ended);
    },
  });
  return { listener, kinds, chat, ended };
}

/** Plays `moves` ("x,y" or "pass"), alternating from black, asserting each is played. */
export async function playAll(g: { black: Game; white: Game }, moves: readonly string[]): Promise<void> {
  for (const [i, m] of moves.entries()) {
    const game = i % 2 === 0 ? g.black : g.white;
    const r =
      m === "pass"
        ? await game.pass()
        : await game.move({ point: { x: Number(m.split(",")[0]), y: Number(m.split(",")[1]) } });
    if (r.outcome.which() !== MoveOutcome_Which.PLAYED) {
      throw new Error(`move ${i + 1} (${m}) was not played: ${kindOf(r.outcome)} ${r.outcome.illegal}`);
    }
  }
}
