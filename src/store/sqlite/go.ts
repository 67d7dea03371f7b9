/**
 * `SqliteGoRepository`: the `go_*` tables (migration 5); the store's `GoStore` (`GO_STORE`).
 *
 * Invariants (those of `GoStore`, kept here):
 * - `acceptChallenge` deletes the challenge and inserts its game in one IMMEDIATE transaction:
 *   a challenge makes at most one game.
 * - `go_games.move_count` always equals the number of `go_moves` rows of the game, numbered
 *   1..move_count; `appendMove` inserts number move_count + 1 only, `undoMoves` deletes a suffix.
 * - A finished game is never written again (`conflict`).
 * - A player's write checks, in its transaction, that the login is current (REVOKED) and that the
 *   player sits in the game (PERMISSION_DENIED).
 * - At most `maxOpen` open challenges per challenger (QUOTA), counted in the transaction.
 * - Writes are group-committed (`GroupCommit`, as the bank's): the writes of one event-loop turn
 *   (many games' moves) share one IMMEDIATE transaction and one fsync; each answers only once
 *   durable, and one that throws undoes only its own changes.
 *
 * Tests: test/store/go.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import type {
  GoActor,
  GoChallengeRecord,
  GoGameInit,
  GoGameRecord,
  GoMoveInput,
  GoMoveRow,
  GoPhase,
  GoRatingRecord,
  GoStore,
  GoWriteResult,
} from "../go-store.js";
import { GroupCommit, type GroupStats } from "./bank-group.js";
import type { SqliteDatabase } from "./database.js";

interface ChallengeRow {
  id: number;
  challenger_id: number;
  challenger_name: string;
  opponent_id: number | null;
  terms: string;
  created_at: number;
}

interface GameRow {
  id: number;
  black_id: number;
  white_id: number;
  black_name: string;
  white_name: string;
  rules: string;
  time: string;
  ranked: number;
  phase: GoPhase;
  result: string | null;
  state: string;
  move_count: number;
  created_at: number;
  ended_at: number | null;
}

interface MoveRow {
  number: number;
  color: "black" | "white";
  x: number | null;
  y: number | null;
  at: number;
}

interface RatingRow {
  identity_id: number;
  rating: number;
  deviation: number;
  volatility: number;
  games: number;
}

const CHALLENGE_COLUMNS = `c.id, c.challenger_id, i.name AS challenger_name, c.opponent_id, c.terms, c.created_at
  FROM go_challenges c JOIN identities i ON i.id = c.challenger_id`;
const GAME_COLUMNS = `g.id, g.black_id, g.white_id, b.name AS black_name, w.name AS white_name, g.rules, g.time,
  g.ranked, g.phase, g.result, g.state, g.move_count, g.created_at, g.ended_at
  FROM go_games g JOIN identities b ON b.id = g.black_id JOIN identities w ON w.id = g.white_id`;

function prepare(db: SqliteDatabase) {
  return {
    insertChallenge: db.prepare<[number, number | null, string, number], { id: number }>(
      "INSERT INTO go_challenges (challenger_id, opponent_id, terms, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    ),
    countChallenges: db.prepare<[number], { n: number }>(
      "SELECT count(*) AS n FROM go_challenges WHERE challenger_id = ?",
    ),
    challenge: db.prepare<[number], ChallengeRow>(`SELECT ${CHALLENGE_COLUMNS} WHERE c.id = ?`),
    challengesFor: db.prepare<[number, number, number], ChallengeRow>(
      `SELECT ${CHALLENGE_COLUMNS} WHERE c.opponent_id IS NULL OR c.opponent_id = ? OR c.challenger_id = ?
       ORDER BY c.id LIMIT ?`,
    ),
    deleteChallenge: db.prepare<[number]>("DELETE FROM go_challenges WHERE id = ?"),
    deleteChallengesOf: db.prepare<[number], { id: number }>(
      "DELETE FROM go_challenges WHERE challenger_id = ? RETURNING id",
    ),
    insertGame: db.prepare<[number, number, string, string, number, string, number], { id: number }>(
      `INSERT INTO go_games (black_id, white_id, rules, time, ranked, phase, state, created_at)
       VALUES (?, ?, ?, ?, ?, 'playing', ?, ?) RETURNING id`,
    ),
    game: db.prepare<[number], GameRow>(`SELECT ${GAME_COLUMNS} WHERE g.id = ?`),
    gamesOf: db.prepare<[number, number, number, number], GameRow>(
      `SELECT ${GAME_COLUMNS} WHERE (g.black_id = ? OR g.white_id = ?) AND (? = 1 OR g.phase <> 'finished')
       ORDER BY g.id DESC LIMIT ?`,
    ),
    unfinished: db.prepare<[], GameRow>(`SELECT ${GAME_COLUMNS} WHERE g.phase <> 'finished' ORDER BY g.id`),
    moves: db.prepare<[number], MoveRow>(
      "SELECT number, color, x, y, at FROM go_moves WHERE game_id = ? ORDER BY number",
    ),
    insertMove: db.prepare<[number, number, string, number | null, number | null, number]>(
      "INSERT INTO go_moves (game_id, number, color, x, y, at) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    deleteMovesAfter: db.prepare<[number, number]>("DELETE FROM go_moves WHERE game_id = ? AND number > ?"),
    setMoves: db.prepare<[number, string, GoPhase, number]>(
      "UPDATE go_games SET move_count = ?, state = ?, phase = ? WHERE id = ?",
    ),
    setState: db.prepare<[string, GoPhase, number]>("UPDATE go_games SET state = ?, phase = ? WHERE id = ?"),
    finish: db.prepare<[string, string, number, number]>(
      "UPDATE go_games SET phase = 'finished', result = ?, state = ?, ended_at = ? WHERE id = ?",
    ),
    rating: db.prepare<[number], RatingRow>("SELECT * FROM go_ratings WHERE identity_id = ?"),
    upsertRating: db.prepare<[number, number, number, number, number]>(
      `INSERT INTO go_ratings (identity_id, rating, deviation, volatility, games) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (identity_id) DO UPDATE SET rating = excluded.rating, deviation = excluded.deviation,
         volatility = excluded.volatility, games = excluded.games`,
    ),
  };
}

const challengeOf = (r: ChallengeRow): GoChallengeRecord => ({
  id: r.id,
  challengerId: r.challenger_id,
  challengerName: r.challenger_name,
  opponentId: r.opponent_id,
  terms: r.terms,
  createdAt: r.created_at,
});

const gameOf = (r: GameRow): GoGameRecord => ({
  id: r.id,
  blackId: r.black_id,
  whiteId: r.white_id,
  blackName: r.black_name,
  whiteName: r.white_name,
  rules: r.rules,
  time: r.time,
  ranked: r.ranked === 1,
  phase: r.phase,
  result: r.result,
  state: r.state,
  createdAt: r.created_at,
  endedAt: r.ended_at,
  moveCount: r.move_count,
});

const OK: GoWriteResult = Object.freeze({ kind: "ok" });
const conflict = (reason: string): GoWriteResult => ({ kind: "conflict", reason });

export class SqliteGoRepository implements GoStore {
  readonly #db: SqliteDatabase;
  readonly #s: ReturnType<typeof prepare>;
  readonly #group: GroupCommit;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    this.#s = prepare(db);
    this.#group = new GroupCommit(db);
  }

  /** What the group commit has done, for tests and the bench. */
  get groupStats(): GroupStats {
    return this.#group.stats;
  }

  /** Commits every queued write (the store is closing). */
  drain(): void {
    this.#group.drain();
  }

  /** Inside a write: the actor's login is current and, for a game, they sit in it. */
  #check(actor: GoActor | null, game?: GameRow): void {
    if (actor === null) return;
    this.#db.assertCurrent(actor.identityId, actor.epoch);
    if (game !== undefined && game.black_id !== actor.identityId && game.white_id !== actor.identityId) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `identity ${actor.identityId} does not play game ${game.id}`,
      );
    }
  }

  #liveGame(actor: GoActor | null, gameId: number): GameRow | GoWriteResult {
    const game = this.#s.game.get(gameId);
    if (game === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no game ${gameId}`);
    this.#check(actor, game);
    if (game.phase === "finished") return conflict("the game is finished");
    return game;
  }

  async createChallenge(
    actor: GoActor,
    init: { opponentId: number | null; terms: string; at: number; maxOpen: number },
  ): Promise<GoChallengeRecord> {
    return this.#group.submit("go.createChallenge", () => {
      this.#check(actor);
      const open = this.#s.countChallenges.get(actor.identityId)?.n ?? 0;
      if (open >= init.maxOpen) {
        throw new ParallaxError(ErrorCode.QUOTA, `at most ${init.maxOpen} open challenges per player`);
      }
      const { id } = this.#s.insertChallenge.get(actor.identityId, init.opponentId, init.terms, init.at) as {
        id: number;
      };
      return challengeOf(this.#s.challenge.get(id) as ChallengeRow);
    });
  }

  async listChallenges(identityId: number, limit: number): Promise<GoChallengeRecord[]> {
    return this.#db.read("go.listChallenges", () =>
      this.#s.challengesFor.all(identityId, identityId, limit).map(challengeOf),
    );
  }

  async getChallenge(id: number): Promise<GoChallengeRecord | undefined> {
    return this.#db.read("go.getChallenge", () => {
      const row = this.#s.challenge.get(id);
      return row === undefined ? undefined : challengeOf(row);
    });
  }

  async cancelChallengesOf(identityId: number): Promise<number[]> {
    return this.#group.submit("go.cancelChallengesOf", () =>
      this.#s.deleteChallengesOf.all(identityId).map((r) => r.id),
    );
  }

  async cancelChallenge(actor: GoActor, id: number): Promise<boolean> {
    return this.#group.submit("go.cancelChallenge", () => {
      this.#check(actor);
      const row = this.#s.challenge.get(id);
      if (row === undefined || row.challenger_id !== actor.identityId) return false;
      this.#s.deleteChallenge.run(id);
      return true;
    });
  }

  async acceptChallenge(actor: GoActor, id: number, game: GoGameInit): Promise<GoGameRecord | undefined> {
    return this.#group.submit("go.acceptChallenge", () => {
      this.#check(actor);
      const row = this.#s.challenge.get(id);
      if (row === undefined) return undefined;
      const seats = [game.blackId, game.whiteId].sort((a, b) => a - b);
      const wanted = [row.challenger_id, actor.identityId].sort((a, b) => a - b);
      if (seats[0] !== wanted[0] || seats[1] !== wanted[1]) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "the game must seat the challenger and the acceptor");
      }
      if (row.opponent_id !== null && row.opponent_id !== actor.identityId) {
        throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this challenge is addressed to someone else");
      }
      this.#s.deleteChallenge.run(id);
      return this.#insertGame(game);
    });
  }

  #insertGame(game: GoGameInit): GoGameRecord {
    const { id } = this.#s.insertGame.get(
      game.blackId,
      game.whiteId,
      game.rules,
      game.time,
      game.ranked ? 1 : 0,
      game.state,
      game.createdAt,
    ) as { id: number };
    return gameOf(this.#s.game.get(id) as GameRow);
  }

  async createGame(actor: GoActor | null, game: GoGameInit): Promise<GoGameRecord> {
    return this.#group.submit("go.createGame", () => {
      this.#check(actor);
      return this.#insertGame(game);
    });
  }

  async getGame(id: number): Promise<GoGameRecord | undefined> {
    return this.#db.read("go.getGame", () => {
      const row = this.#s.game.get(id);
      return row === undefined ? undefined : gameOf(row);
    });
  }

  async gamesOf(identityId: number, includeFinished: boolean, limit: number): Promise<GoGameRecord[]> {
    return this.#db.read("go.gamesOf", () =>
      this.#s.gamesOf.all(identityId, identityId, includeFinished ? 1 : 0, limit).map(gameOf),
    );
  }

  async unfinishedGames(): Promise<GoGameRecord[]> {
    return this.#db.read("go.unfinishedGames", () => this.#s.unfinished.all().map(gameOf));
  }

  async moves(gameId: number): Promise<GoMoveRow[]> {
    return this.#db.read("go.moves", () => this.#s.moves.all(gameId).map((m) => ({ ...m })));
  }

  async appendMove(
    actor: GoActor | null,
    gameId: number,
    number: number,
    move: GoMoveInput,
    state: string,
    phase: GoPhase,
  ): Promise<GoWriteResult> {
    return this.#group.submit("go.appendMove", () => {
      const game = this.#liveGame(actor, gameId);
      if ("kind" in game) return game;
      if (number !== game.move_count + 1) {
        return conflict(`move ${number} does not follow move ${game.move_count}`);
      }
      if (phase === "finished")
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "finish a game with finishGame");
      this.#s.insertMove.run(gameId, number, move.color, move.x, move.y, move.at);
      this.#s.setMoves.run(number, state, phase, gameId);
      return OK;
    });
  }

  async undoMoves(
    actor: GoActor | null,
    gameId: number,
    from: number,
    keep: number,
    state: string,
  ): Promise<GoWriteResult> {
    return this.#group.submit("go.undoMoves", () => {
      const game = this.#liveGame(actor, gameId);
      if ("kind" in game) return game;
      if (game.move_count !== from) return conflict(`the game has ${game.move_count} moves, not ${from}`);
      if (!Number.isInteger(keep) || keep < 0 || keep > from) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `cannot keep ${keep} of ${from} moves`);
      }
      this.#s.deleteMovesAfter.run(gameId, keep);
      this.#s.setMoves.run(keep, state, "playing", gameId);
      return OK;
    });
  }

  async saveState(
    actor: GoActor | null,
    gameId: number,
    phase: GoPhase,
    state: string,
  ): Promise<GoWriteResult> {
    return this.#group.submit("go.saveState", () => {
      const game = this.#liveGame(actor, gameId);
      if ("kind" in game) return game;
      if (phase === "finished")
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "finish a game with finishGame");
      this.#s.setState.run(state, phase, gameId);
      return OK;
    });
  }

  async finishGame(
    actor: GoActor | null,
    gameId: number,
    end: { result: string; state: string; at: number; ratings: readonly GoRatingRecord[] },
  ): Promise<GoWriteResult> {
    return this.#group.submit("go.finishGame", () => {
      const game = this.#liveGame(actor, gameId);
      if ("kind" in game) return game;
      if (end.result === "")
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a finished game needs a result");
      for (const r of end.ratings) {
        if (r.identityId !== game.black_id && r.identityId !== game.white_id) {
          throw new ParallaxError(
            ErrorCode.BAD_ARGUMENT,
            `identity ${r.identityId} did not play game ${gameId}`,
          );
        }
        if (!game.ranked)
          throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "an unranked game changes no rating");
        this.#s.upsertRating.run(r.identityId, r.rating, r.deviation, r.volatility, r.games);
      }
      this.#s.finish.run(end.result, end.state, end.at, gameId);
      return OK;
    });
  }

  async getRating(identityId: number): Promise<GoRatingRecord | undefined> {
    return this.#db.read("go.getRating", () => {
      const r = this.#s.rating.get(identityId);
      return r === undefined
        ? undefined
        : {
            identityId: r.identity_id,
            rating: r.rating,
            deviation: r.deviation,
            volatility: r.volatility,
            games: r.games,
          };
    });
  }
}
