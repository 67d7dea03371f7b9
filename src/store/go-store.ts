/**
 * The Go service's store contract (seed 004) and its records. A service asks for it with
 * `store.repository(GO_STORE)`; `SqliteBrokerStore` answers with `sqlite/go.ts`, which shares the
 * identities' database so that a move checks its player's login epoch in its own transaction.
 *
 * A game is stored as its terms, its moves (one row each, numbered 1, 2, … without gaps) and a
 * small state document the service owns (clocks, dead-stone marks, offers, acceptances), so that
 * a restarted broker rebuilds every unfinished game by replaying its moves.
 *
 * Invariants every implementation keeps:
 * - A challenge is taken at most once: `acceptChallenge` deletes it and creates its game in one
 *   transaction, so of two players racing to accept, one gets the game and the other `undefined`.
 * - Moves are numbered 1..n without gaps: `appendMove` stores move n + 1 only if the game has n
 *   moves and is not finished (else `conflict`), and `undoMoves` removes a suffix.
 * - A finished game never changes again; a ranked game's result and both players' new ratings
 *   commit together.
 * - Every write by a player names them (`GoActor`): inside the transaction the login must be
 *   current (PARALLAX_ERR_REVOKED otherwise) and the player must sit in the game.
 *
 * Tests: test/store/go.test.ts, test/services/go/
 */
import { type StoreContract, storeContract } from "./store-contract.js";

export type GoPhase = "playing" | "scoring" | "finished";
export type GoColor = "black" | "white";

/** Who writes: a login (identity and epoch). The service's own writes (timeouts) pass none. */
export interface GoActor {
  readonly identityId: number;
  readonly epoch: number;
}

export interface GoChallengeRecord {
  readonly id: number;
  readonly challengerId: number;
  readonly challengerName: string;
  /** Only this identity may accept; null for an open challenge. */
  readonly opponentId: number | null;
  /** The service's encoding of the terms (JSON). */
  readonly terms: string;
  readonly createdAt: number;
}

export interface GoGameInit {
  readonly blackId: number;
  readonly whiteId: number;
  readonly rules: string;
  readonly time: string;
  readonly ranked: boolean;
  readonly state: string;
  readonly createdAt: number;
}

export interface GoGameRecord {
  readonly id: number;
  readonly blackId: number;
  readonly whiteId: number;
  readonly blackName: string;
  readonly whiteName: string;
  readonly rules: string;
  readonly time: string;
  readonly ranked: boolean;
  readonly phase: GoPhase;
  /** SGF's RE ("B+R", "W+3.5", "0"), or null while unfinished. */
  readonly result: string | null;
  readonly state: string;
  readonly createdAt: number;
  readonly endedAt: number | null;
  readonly moveCount: number;
}

export interface GoMoveInput {
  readonly color: GoColor;
  /** null: a pass. */
  readonly x: number | null;
  readonly y: number | null;
  readonly at: number;
}

export interface GoMoveRow extends GoMoveInput {
  readonly number: number;
}

export interface GoRatingRecord {
  readonly identityId: number;
  readonly rating: number;
  readonly deviation: number;
  readonly volatility: number;
  readonly games: number;
}

export type GoWriteResult = { readonly kind: "ok" } | { readonly kind: "conflict"; readonly reason: string };

export interface GoStore {
  createChallenge(
    actor: GoActor,
    init: { opponentId: number | null; terms: string; at: number; maxOpen: number },
  ): Promise<GoChallengeRecord>;
  /** Open challenges `identityId` may see: open to all, addressed to it, or its own; oldest first. */
  listChallenges(identityId: number, limit: number): Promise<GoChallengeRecord[]>;
  getChallenge(id: number): Promise<GoChallengeRecord | undefined>;
  /** Deletes every open challenge of `identityId` (its last attachment ended); their ids. */
  cancelChallengesOf(identityId: number): Promise<number[]>;
  /** Deletes the challenge iff it is the challenger's; false if it was gone. */
  cancelChallenge(actor: GoActor, id: number): Promise<boolean>;
  /** Takes the challenge and creates its game, atomically; undefined if it was gone. */
  acceptChallenge(actor: GoActor, id: number, game: GoGameInit): Promise<GoGameRecord | undefined>;
  /** A game without a challenge (against one of the broker's engines). */
  createGame(actor: GoActor | null, game: GoGameInit): Promise<GoGameRecord>;
  getGame(id: number): Promise<GoGameRecord | undefined>;
  /** `identityId`'s games, newest first. */
  gamesOf(identityId: number, includeFinished: boolean, limit: number): Promise<GoGameRecord[]>;
  /** Every game not finished, for rebuilding them at start. */
  unfinishedGames(): Promise<GoGameRecord[]>;
  moves(gameId: number): Promise<GoMoveRow[]>;
  /** Stores move `number` (= stored count + 1) and the new state, if the game is not finished. */
  appendMove(
    actor: GoActor | null,
    gameId: number,
    number: number,
    move: GoMoveInput,
    state: string,
    phase: GoPhase,
  ): Promise<GoWriteResult>;
  /** Removes moves after `keep` (the game has `from` moves) and stores the state. */
  undoMoves(
    actor: GoActor | null,
    gameId: number,
    from: number,
    keep: number,
    state: string,
  ): Promise<GoWriteResult>;
  /** Stores the state (and phase) of an unfinished game. */
  saveState(actor: GoActor | null, gameId: number, phase: GoPhase, state: string): Promise<GoWriteResult>;
  /** Ends the game with `result`; a ranked game's two new ratings commit with it. */
  finishGame(
    actor: GoActor | null,
    gameId: number,
    end: { result: string; state: string; at: number; ratings: readonly GoRatingRecord[] },
  ): Promise<GoWriteResult>;
  getRating(identityId: number): Promise<GoRatingRecord | undefined>;
}

export const GO_STORE: StoreContract<GoStore> = storeContract<GoStore>("go");
