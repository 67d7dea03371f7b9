/**
 * The Go server (schema/go.capnp; seed 004's unfinished section, finished). Each attachment of
 * ("go", "player") gets a PlayerPerspective; every game is one `LiveGame` whose `Game` capability
 * is a Viewable shared by both players and whose `Spectator` capability is a read-only one.
 *
 * Invariants:
 * - The colour a call plays is the seat of the caller's identity in that game, taken from the
 *   Perspective the broker passes the Viewable; nothing a client sends names a player. A caller
 *   who does not sit in the game gets PERMISSION_DENIED from every Game method.
 * - One game's operations run one at a time, in arrival order; each is decided on the engine and
 *   the clock in memory, then stored (the store checks the move number, the login and the seat in
 *   its transaction), and only then announced. If the store refuses or fails, the game is
 *   replayed from the store into the same object (the capabilities held stay good): memory never
 *   holds what the store lacks.
 * - The server's clock is authoritative: a move that arrives after the mover's flag fell ends
 *   the game on time; one timer per game fires at the next flag.
 * - Spectators' chat reaches spectators only; players (whichever capability they call through)
 *   read and hear players' chat only.
 * - Listeners are per attachment and game, bounded (the kit's Notifier), and go with their
 *   attachment; a player's games learn of a disconnect when their last attachment ends.
 *
 * Tests: test/services/go/go-service.test.ts, test/services/go/go-security.test.ts
 */
import type { Clock, Timer } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  type DetachReason,
  type IdentityView,
  Notifier,
  PerUserService,
  type ServiceModule,
  UserPerspective,
  viewable,
} from "../../login/index.js";
import {
  type BrokerStore,
  GO_STORE,
  type GoActor,
  type GoGameRecord,
  type GoMoveRow,
  type GoRatingRecord,
  type GoStore,
} from "../../store/index.js";
import {
  Challenge,
  type Challenge$Server,
  type ChallengeInfo$Shape,
  type ChatLine$Shape,
  Game,
  type Game$Server,
  type Game_answerUndo_Params,
  type Game_markDead_Params,
  type Game_move_Params,
  type Game_placeHandicap_Params,
  type GameEvent$Shape,
  type GameInfo$Shape,
  type GameListener,
  type GameView_chat_Params,
  type GameView_listen_Params,
  type GameView_moves_Params,
  type GameView_say_Params,
  Illegal,
  type MoveOutcome$Shape,
  Phase,
  Player,
  type Player$Server,
  type Player_accept_Params,
  type Player_challenge_Params,
  type Player_cancelChallenge_Params,
  type Player_game_Params,
  type Player_playEngine_Params,
  type Player_games_Params,
  type Player_watch_Params,
  type Score$Shape,
  Spectator,
  type Spectator$Server,
} from "../../wire/gen/go.js";
import { type EngineConfig, type EngineGame, EngineSeat } from "./engine-seat.js";
import { type ClockSnapshot, GameClock, timeControlToSgf } from "./game-clock.js";
import { GLICKO2_UNRATED, type Glicko2Rating, glicko2Game } from "./glicko2.js";
import { GoGame, type IllegalReason } from "./go-game.js";
import { GO_PLAYER } from "./go-keys.js";
import type { Point } from "./go-point.js";
import { type Color, goRules, otherColor } from "./go-rules.js";
import { findGnuGo } from "./gtp-engine.js";
import { writeSgf } from "./sgf.js";
import {
  readPoint,
  readTerms,
  type Terms,
  wireColor,
  writeClocks,
  writeMove,
  writePoint,
  writeRules,
  writeTerms,
  writeTime,
} from "./go-wire.js";

export interface GoOptions {
  /** Open challenges one player may have. Default 5. */
  readonly maxOpenChallenges?: number;
  /** How long a dropped player may take to come back before the opponent may claim the win. Default 60 s. */
  readonly graceMs?: number;
  /** Longest chat line, in characters. Default 500. */
  readonly maxChatChars?: number;
  /** Chat lines kept per game. Default 200. */
  readonly maxChatHistory?: number;
  /** Chat lines one user may say per game per minute. Default 20. */
  readonly chatLinesPerMinute?: number;
  /** Listeners one attachment may register per game. Default 4. */
  readonly maxListenersPerAttachment?: number;
  /** Unanswered events one listener may have before further ones are dropped for it. Default 32. */
  readonly maxNotificationsInFlight?: number;
  /** Nigiri: true means the challenger takes black. Default: a fair coin. */
  readonly nigiri?: () => boolean;
  /**
   * GTP engines players may play (`Player.playEngine(terms, name)`), by name. Default: `gnugo`
   * (level 3) when GNU Go is installed, else none.
   */
  readonly engines?: Readonly<Record<string, EngineConfig>>;
  /** Told about engine restarts and refusals. Default: nothing. */
  readonly log?: (line: string) => void;
}

/** The engines a Go server offers by default: GNU Go, when it is installed. */
export function defaultEngines(): Record<string, EngineConfig> {
  const gnugo = findGnuGo();
  return gnugo === undefined ? {} : { gnugo: { command: gnugo, args: ["--mode", "gtp", "--level", "3"] } };
}

/** The user name of the identity an engine plays under: users cannot take it (no spaces in names). */
export const engineUserName = (engine: string): string => `${engine} (bot)`;

/** The Go server as a module for `startBroker({ services: [go()] })`. */
export function go(options: GoOptions = {}): ServiceModule<GoService, GoStore> {
  return {
    name: GO_PLAYER.service,
    defaultKeyring: [GO_PLAYER],
    store: GO_STORE,
    create: (ctx) =>
      new GoService({ games: ctx.repository, identities: ctx.store, clock: ctx.clock }, options),
  };
}

export interface GoContext {
  readonly games: GoStore;
  readonly identities: BrokerStore;
  readonly clock: Clock;
}

interface Limits {
  readonly maxOpenChallenges: number;
  readonly graceMs: number;
  readonly maxChatChars: number;
  readonly maxChatHistory: number;
  readonly chatLinesPerMinute: number;
  readonly maxListenersPerAttachment: number;
  readonly maxNotificationsInFlight: number;
}

/** What a game keeps beside its moves: stored as JSON with every write. */
interface GameState {
  clock: ClockSnapshot;
  /** The stones marked dead (scoring phase). */
  dead: Point[];
  accepted: Color[];
  undo: { by: Color; moves: number } | null;
  /** The move count at which each colour's last undo request was refused. */
  undoRefusedAt: { black: number; white: number };
  /** The move counts at which play resumed from scoring (the passes before stay in the record). */
  resumedAt: number[];
  /** Free handicap stones, once placed. */
  handicap: Point[] | null;
  /** Each move's time, in ms. */
  times: number[];
  /** The colours the broker's engines play, by engine name. */
  engines?: Partial<Record<Color, string>>;
}

interface Envelope {
  readonly event: GameEvent$Shape;
  /** Spectators' chat: not for players. */
  readonly spectatorsOnly: boolean;
}

/** Who acts in a game: a colour, and the login to check in the store (null: the server's own engine). */
interface Seat {
  readonly color: Color;
  readonly actor: GoActor | null;
}

interface ListenerOwner {
  readonly perspective: PlayerPerspective;
  readonly spectator: boolean;
}

const ILLEGAL: Record<IllegalReason, Illegal> = {
  occupied: Illegal.OCCUPIED,
  offBoard: Illegal.OCCUPIED, // never returned: off-board points are refused as BAD_ARGUMENT first
  suicide: Illegal.SUICIDE,
  ko: Illegal.KO,
  superko: Illegal.SUPERKO,
  gameOver: Illegal.GAME_OVER,
  notYourTurn: Illegal.NOT_YOUR_TURN,
  handicapPending: Illegal.HANDICAP_PENDING,
  notHandicapPhase: Illegal.NOT_HANDICAP_PHASE,
  moveLimit: Illegal.MOVE_LIMIT,
};

const illegal = (i: Illegal): { outcome: MoveOutcome$Shape } => ({ outcome: { illegal: i } });

export class GoService extends PerUserService<null, PlayerPerspective> {
  readonly name = GO_PLAYER.service;
  readonly store: GoStore;
  readonly identities: BrokerStore;
  readonly clock: Clock;
  readonly limits: Limits;
  readonly nigiri: () => boolean;
  readonly engines: Readonly<Record<string, EngineConfig>>;
  readonly log: (line: string) => void;
  readonly #live = new Map<number, LiveGame>();
  readonly #loading = new Map<number, Promise<LiveGame | undefined>>();
  readonly #waiters = new Map<number, Set<{ resolve: (g: LiveGame) => void; reject: (e: Error) => void }>>();
  #closed = false;
  /** Settles once every unfinished game is loaded and its clock armed (never rejects). */
  readonly ready: Promise<void>;
  /** Why loading the unfinished games failed, if it did (each game then loads when first used). */
  loadError: unknown;

  constructor(context: GoContext, options: GoOptions = {}) {
    super();
    this.store = context.games;
    this.identities = context.identities;
    this.clock = context.clock;
    this.limits = {
      maxOpenChallenges: options.maxOpenChallenges ?? 5,
      graceMs: options.graceMs ?? 60_000,
      maxChatChars: options.maxChatChars ?? 500,
      maxChatHistory: options.maxChatHistory ?? 200,
      chatLinesPerMinute: options.chatLinesPerMinute ?? 20,
      maxListenersPerAttachment: options.maxListenersPerAttachment ?? 4,
      maxNotificationsInFlight: options.maxNotificationsInFlight ?? 32,
    };
    this.nigiri = options.nigiri ?? (() => Math.random() < 0.5);
    this.engines = options.engines ?? defaultEngines();
    this.log = options.log ?? (() => {});
    this.ready = this.#loadUnfinished().catch((err: unknown) => {
      this.loadError = err;
    });
  }

  async #loadUnfinished(): Promise<void> {
    for (const record of await this.store.unfinishedGames()) {
      // One game the engine cannot replay must not keep the others from their clocks.
      await this.live(record.id).catch((err: unknown) => {
        this.log(`game ${record.id} was not loaded: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
  }

  protected newPerspective(name: string, identity: IdentityView): PlayerPerspective | undefined {
    return name === GO_PLAYER.perspective ? new PlayerPerspective(this, identity) : undefined;
  }

  protected newUser(): null {
    return null;
  }

  /** The game `id`, loaded from the store and kept live; undefined if there is none. */
  async live(id: number): Promise<LiveGame | undefined> {
    const game = this.#live.get(id);
    if (game !== undefined) return game;
    let loading = this.#loading.get(id);
    if (loading === undefined) {
      loading = (async () => {
        const record = await this.store.getGame(id);
        if (record === undefined) return undefined;
        const g = LiveGame.rebuild(this, record, await this.store.moves(id));
        // Only unfinished games stay in memory; a finished one is rebuilt when asked for again.
        if (!this.#closed && !g.finished) this.#live.set(id, g);
        return g;
      })().finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }

  /** A game that ended leaves memory (its holders keep their capabilities to it). */
  retire(game: LiveGame): void {
    if (this.#live.get(game.id) === game) this.#live.delete(game.id);
  }

  /** Forgets a game whose memory may disagree with the store; the next use reloads it. */
  forget(game: LiveGame): void {
    if (this.#live.get(game.id) === game) this.#live.delete(game.id);
    game.dispose();
  }

  /** A new game was made: keep it, arm its clock and tell a waiting challenger. */
  adopt(record: GoGameRecord, challengeId?: number): LiveGame {
    const g = LiveGame.rebuild(this, record, []);
    this.#live.set(record.id, g);
    if (challengeId !== undefined) this.challengeTaken(challengeId, g);
    return g;
  }

  /** Withdraws the open challenges of a user whose last attachment ended (nobody waits on them). */
  withdrawChallenges(identityId: number): void {
    this.store.cancelChallengesOf(identityId).then(
      (ids) => {
        for (const id of ids) this.challengeGone(id, "the challenger left");
      },
      (err: unknown) => this.log(`challenges of ${identityId} not withdrawn: ${String(err)}`),
    );
  }

  /** The identity engine `name` plays under, made on first use. */
  async engineIdentity(name: string): Promise<number> {
    const user = engineUserName(name);
    const found = await this.identities.findIdentityByName(user);
    if (found !== undefined) return found.id;
    try {
      return (await this.identities.createIdentity({ name: user, verifier: null, keyring: [] })).id;
    } catch (err) {
      const again = await this.identities.findIdentityByName(user);
      if (again === undefined) throw err;
      return again.id;
    }
  }

  /** Answers everyone waiting for challenge `id` with the game it made. */
  challengeTaken(id: number, game: LiveGame): void {
    for (const w of this.#waiters.get(id) ?? []) w.resolve(game);
    this.#waiters.delete(id);
  }

  waitForChallenge(id: number): Promise<LiveGame> {
    return new Promise((resolve, reject) => {
      const set = this.#waiters.get(id) ?? new Set();
      this.#waiters.set(id, set);
      set.add({ resolve, reject });
    });
  }

  challengeGone(id: number, why: string): void {
    for (const w of this.#waiters.get(id) ?? []) w.reject(new ParallaxError(ErrorCode.FAILED, why));
    this.#waiters.delete(id);
  }

  /** Live games `identityId` sits in. */
  *gamesOf(identityId: number): Iterable<LiveGame> {
    for (const g of this.#live.values()) if (g.seatOf(identityId) !== undefined) yield g;
  }

  connected(identityId: number): boolean {
    return this.attachedOf(identityId).size > 0;
  }

  close(): void {
    this.#closed = true;
    for (const g of this.#live.values()) g.dispose();
    this.#live.clear();
    for (const id of [...this.#waiters.keys()]) this.challengeGone(id, "the Go server closed");
  }
}

/** One attachment of ("go", "player"): one user on one device. */
export class PlayerPerspective extends UserPerspective<null> implements Player$Server {
  /** The games this attachment registered listeners on (live or already retired). */
  readonly listenedTo = new Set<LiveGame>();

  constructor(
    readonly go: GoService,
    identity: IdentityView,
  ) {
    super(go, identity);
  }

  get actor(): GoActor {
    return { identityId: this.identity.id, epoch: this.identity.epoch };
  }

  capability(): Player {
    return Player.server(this.serve<Player$Server>());
  }

  protected override onAttached(): void {
    for (const g of this.go.gamesOf(this.identity.id)) g.reconnected(this.identity.id);
  }

  protected override onDetached(reason: DetachReason): void {
    for (const g of this.listenedTo) g.removeListeners(this, reason);
    this.listenedTo.clear();
    // This attachment still counts until `leave`: it was the last one if it is the only one.
    if (this.go.attachedOf(this.identity.id).size <= 1) {
      for (const g of this.go.gamesOf(this.identity.id)) g.disconnected(this.identity.id);
      this.go.withdrawChallenges(this.identity.id);
    }
  }

  async cancelChallenge(params: Player_cancelChallenge_Params) {
    const id = Number(params.id);
    const cancelled = await this.go.store.cancelChallenge(this.actor, id);
    if (cancelled) this.go.challengeGone(id, "the challenge was cancelled");
    return { cancelled };
  }

  async openChallenges() {
    const rows = await this.go.store.listChallenges(this.identity.id, 100);
    const challenges: ChallengeInfo$Shape[] = rows.map((c) => ({
      id: BigInt(c.id),
      challenger: c.challengerName,
      terms: writeTerms(JSON.parse(c.terms) as Terms),
      createdAt: BigInt(c.createdAt),
    }));
    return { challenges };
  }

  async challenge(params: Player_challenge_Params) {
    const terms = readTerms(params.terms);
    let opponentId: number | null = null;
    if (terms.opponent !== "") {
      const opponent = await this.go.identities.findIdentityByName(terms.opponent);
      if (opponent === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no user ${terms.opponent}`);
      if (opponent.id === this.identity.id) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "a challenge cannot be addressed to oneself");
      }
      opponentId = opponent.id;
    }
    const record = await this.go.store.createChallenge(this.actor, {
      opponentId,
      terms: JSON.stringify(terms),
      at: this.go.clock.now(),
      maxOpen: this.go.limits.maxOpenChallenges,
    });
    const id = record.id;
    const me = this;
    const server: Challenge$Server = {
      async cancel() {
        if (await me.go.store.cancelChallenge(me.actor, id))
          me.go.challengeGone(id, "the challenge was cancelled");
      },
      async accepted() {
        const game = await me.#awaitAccepted(id);
        return { game: game.gameCap };
      },
    };
    return { challenge: Challenge.server(server), id: BigInt(id) };
  }

  async #awaitAccepted(id: number): Promise<LiveGame> {
    const waiting = this.go.waitForChallenge(id);
    if ((await this.go.store.getChallenge(id)) === undefined) {
      // Accepted (or cancelled) before we started waiting: the game it made, if any.
      const made = [...this.go.gamesOf(this.identity.id)].find((g) => g.challengeId === id);
      if (made === undefined) this.go.challengeGone(id, "the challenge is gone");
      else this.go.challengeTaken(id, made);
    }
    return waiting;
  }

  async accept(params: Player_accept_Params) {
    const id = Number(params.id);
    const c = await this.go.store.getChallenge(id);
    if (c === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no open challenge ${id}`);
    if (c.challengerId === this.identity.id) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "one cannot accept one's own challenge");
    }
    if (c.opponentId !== null && c.opponentId !== this.identity.id) {
      throw new ParallaxError(ErrorCode.PERMISSION_DENIED, "this challenge is addressed to someone else");
    }
    const terms = JSON.parse(c.terms) as Terms;
    const challengerBlack = terms.color === "black" || (terms.color === "nigiri" && this.go.nigiri());
    const now = this.go.clock.now();
    const blackId = challengerBlack ? c.challengerId : this.identity.id;
    const whiteId = challengerBlack ? this.identity.id : c.challengerId;
    const record = await this.go.store.acceptChallenge(this.actor, id, {
      blackId,
      whiteId,
      rules: JSON.stringify(terms.rules),
      time: JSON.stringify(terms.time),
      ranked: terms.ranked,
      state: JSON.stringify(LiveGame.initialState(terms, now, id)),
      createdAt: now,
    });
    if (record === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `challenge ${id} was taken`);
    return { game: this.go.adopt(record, id).gameCap };
  }

  async games(params: Player_games_Params) {
    const rows = await this.go.store.gamesOf(this.identity.id, params.includeFinished, 100);
    const games: GameInfo$Shape[] = [];
    for (const r of rows) {
      const g = await this.go.live(r.id);
      if (g !== undefined) games.push(g.info());
    }
    return { games };
  }

  async game(params: Player_game_Params) {
    const g = await this.go.live(Number(params.id));
    if (g === undefined || g.seatOf(this.identity.id) === undefined) {
      throw new ParallaxError(ErrorCode.NOT_FOUND, `you play no game ${params.id}`);
    }
    return { game: g.gameCap };
  }

  async watch(params: Player_watch_Params) {
    const g = await this.go.live(Number(params.id));
    if (g === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `no game ${params.id}`);
    return { spectator: g.spectatorCap };
  }

  async rating() {
    const r = await this.go.store.getRating(this.identity.id);
    return {
      rating: r
        ? { rating: r.rating, deviation: r.deviation, volatility: r.volatility, games: r.games }
        : {
            rating: GLICKO2_UNRATED.rating,
            deviation: GLICKO2_UNRATED.rd,
            volatility: GLICKO2_UNRATED.volatility,
            games: 0,
          },
    };
  }

  async playEngine(params: Player_playEngine_Params) {
    const name = params.engine;
    if (!Object.hasOwn(this.go.engines, name)) {
      const names = Object.keys(this.go.engines);
      throw new ParallaxError(
        ErrorCode.NOT_FOUND,
        `no engine "${name.slice(0, 40)}" here (${names.length === 0 ? "this broker runs none" : names.join(", ")})`,
      );
    }
    const terms = readTerms(params.terms);
    const bot = await this.go.engineIdentity(name);
    const humanBlack = terms.color === "black" || (terms.color === "nigiri" && this.go.nigiri());
    const botColor: Color = humanBlack ? "white" : "black";
    const now = this.go.clock.now();
    const record = await this.go.store.createGame(this.actor, {
      blackId: humanBlack ? this.identity.id : bot,
      whiteId: humanBlack ? bot : this.identity.id,
      rules: JSON.stringify(terms.rules),
      time: JSON.stringify(terms.time),
      ranked: terms.ranked,
      state: JSON.stringify(LiveGame.initialState(terms, now, undefined, { [botColor]: name })),
      createdAt: now,
    });
    return { game: this.go.adopt(record).gameCap };
  }
}

const isPlayer = (p: unknown): p is PlayerPerspective => p instanceof PlayerPerspective;

/** One game, live in memory: the engine, the clock, chat, listeners, and its two capabilities. */
export class LiveGame implements EngineGame {
  engine: GoGame;
  clockState: GameClock;
  state: GameState;
  readonly chat: ChatLine$Shape[] = [];
  readonly listeners: Notifier<GameListener, Envelope>;
  readonly #owners = new Map<PlayerPerspective, Map<boolean, ListenerOwner>>();
  readonly #said = new Map<number, number[]>();
  readonly #away = new Map<Color, number>();
  #timer: Timer | undefined;
  /** The latest time given to the game's clock: a clock stepped back counts as no time passing. */
  #lastNow = 0;
  readonly #seats: EngineSeat[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  readonly gameCap: Game;
  readonly spectatorCap: Spectator;
  /** The challenge this game came from, if any (stored in the state). */
  readonly challengeId: number | undefined;

  private constructor(
    readonly go: GoService,
    public record: GoGameRecord,
    engine: GoGame,
    state: GameState & { challengeId?: number },
  ) {
    this.engine = engine;
    this.state = state;
    this.challengeId = state.challengeId;
    this.clockState = GameClock.restore(state.clock);
    this.#lastNow = state.clock.lastNow ?? 0;
    this.listeners = new Notifier<GameListener, Envelope>({
      maxInFlight: go.limits.maxNotificationsInFlight,
      maxPerOwner: go.limits.maxListenersPerAttachment,
      deliver: (l, e) => l.event({ event: e.event }),
    });
    this.gameCap = Game.server(viewable<Game$Server, PlayerPerspective>(new GameViewable(this), isPlayer));
    this.spectatorCap = Spectator.server(
      viewable<Spectator$Server, PlayerPerspective>(new SpectatorViewable(this), isPlayer),
    );
    if (engine.phase !== "over") {
      for (const [color, name] of Object.entries(state.engines ?? {}) as [Color, string][]) {
        const config = go.engines[name];
        if (config === undefined) go.log(`game ${record.id}: no engine "${name}" is configured for ${color}`);
        else this.#seats.push(new EngineSeat(this, color, config, go.log));
      }
    }
  }

  get undoOffer(): { readonly by: Color } | null {
    return this.state.undo;
  }

  get deadMarks(): readonly Point[] {
    return this.state.dead;
  }

  get accepted(): readonly Color[] {
    return this.state.accepted;
  }

  /** The engines seated in this game (tests). */
  get engineSeats(): readonly EngineSeat[] {
    return this.#seats;
  }

  /** Lets every seated engine look at the game (after a change, and once it is live). */
  pokeEngines(): void {
    for (const seat of this.#seats) seat.poke();
  }

  static initialState(
    terms: Terms,
    now: number,
    challengeId?: number,
    engines?: Partial<Record<Color, string>>,
  ): GameState & { challengeId?: number } {
    const clock = new GameClock(terms.time);
    const first: Color =
      terms.rules.handicap > 0 && terms.rules.handicapPlacement === "fixed" ? "white" : "black";
    clock.start(now, first);
    return {
      clock: clock.snapshot(),
      dead: [],
      accepted: [],
      undo: null,
      undoRefusedAt: { black: -1, white: -1 },
      resumedAt: [],
      handicap: null,
      times: [],
      ...(challengeId === undefined ? {} : { challengeId }),
      ...(engines === undefined ? {} : { engines }),
    };
  }

  /** The game as the store has it: its moves replayed on a new engine. */
  static rebuild(go: GoService, record: GoGameRecord, moves: readonly GoMoveRow[]): LiveGame {
    const { engine, state } = LiveGame.#replay(record, moves);
    const g = new LiveGame(go, record, engine, state);
    if (record.phase !== "finished") {
      const now = go.clock.now();
      for (const c of ["black", "white"] as const) {
        if (state.engines?.[c] !== undefined) continue;
        if (!go.connected(c === "black" ? record.blackId : record.whiteId)) g.#away.set(c, now);
      }
      g.#arm();
      g.pokeEngines();
    }
    return g;
  }

  /** The engine and state of a stored game: its moves replayed under its rules (`GoGame.replay`). */
  static #replay(
    record: GoGameRecord,
    moves: readonly GoMoveRow[],
  ): { engine: GoGame; state: GameState & { challengeId?: number } } {
    const state = JSON.parse(record.state) as GameState & { challengeId?: number };
    const result = record.phase === "finished" ? record.result : null;
    const by = result === null ? undefined : { R: "resignation", T: "time", F: "forfeit" }[result.slice(2)];
    try {
      const engine = GoGame.replay(goRules(JSON.parse(record.rules)), {
        ...(state.handicap === null ? {} : { handicapStones: state.handicap }),
        moves: moves.map((m) => ({
          color: m.color,
          ...(m.x === null || m.y === null ? {} : { point: { x: m.x, y: m.y } }),
        })),
        resumedAfter: state.resumedAt,
        ...(result === null
          ? {}
          : by === undefined
            ? { end: { by: "score", dead: state.dead } as const }
            : {
                end: {
                  by: by as "resignation" | "time" | "forfeit",
                  loser: (result.startsWith("B+") ? "white" : "black") as Color,
                },
              }),
      });
      return { engine, state };
    } catch (err) {
      throw new ParallaxError(
        ErrorCode.STORAGE,
        `game ${record.id} cannot be replayed from the store: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Makes memory the store's again after a write was refused or failed: the game is replayed
   * from the store into this same object, so the capabilities and listeners already handed out
   * stay attached to the game as the store has it. If even that fails, the game is forgotten
   * (the next lookup tries the store afresh).
   */
  async #reload(): Promise<void> {
    try {
      const record = await this.go.store.getGame(this.id);
      if (record === undefined) throw new ParallaxError(ErrorCode.NOT_FOUND, `game ${this.id} is gone`);
      const { engine, state } = LiveGame.#replay(record, await this.go.store.moves(this.id));
      this.record = record;
      this.engine = engine;
      this.state = state;
      this.clockState = GameClock.restore(state.clock);
      this.#lastNow = Math.max(this.#lastNow, state.clock.lastNow ?? 0);
      this.#arm();
    } catch (err) {
      this.go.log(
        `game ${this.id} could not be reloaded: ${err instanceof Error ? err.message : String(err)}`,
      );
      this.go.forget(this);
    }
  }

  get id(): number {
    return this.record.id;
  }

  /** The broker's clock, never behind what this game's clock was last given. */
  #now(): number {
    this.#lastNow = Math.max(this.#lastNow, this.go.clock.now());
    return this.#lastNow;
  }

  get finished(): boolean {
    return this.engine.phase === "over";
  }

  seatOf(identityId: number): Color | undefined {
    if (identityId === this.record.blackId) return "black";
    if (identityId === this.record.whiteId) return "white";
    return undefined;
  }

  /** The caller's colour, or PERMISSION_DENIED. */
  seat(p: PlayerPerspective): Color {
    const c = this.seatOf(p.identity.id);
    if (c === undefined) {
      throw new ParallaxError(
        ErrorCode.PERMISSION_DENIED,
        `${p.identity.name} does not play game ${this.id}`,
      );
    }
    return c;
  }

  info(): GameInfo$Shape {
    const caps = this.engine.captures;
    return {
      id: BigInt(this.id),
      black: this.record.blackName,
      white: this.record.whiteName,
      rules: writeRules(this.engine.rules),
      time: writeTime(this.clockState.control),
      ranked: this.record.ranked,
      phase: this.finished ? Phase.FINISHED : this.engine.phase === "scoring" ? Phase.SCORING : Phase.PLAYING,
      toMove: wireColor(this.engine.toMove),
      moveCount: this.engine.moveCount,
      result: this.engine.result ?? "",
      createdAt: BigInt(this.record.createdAt),
      blackCaptures: caps.black,
      whiteCaptures: caps.white,
    };
  }

  /** The game as SGF FF[4]: rules, players, date, time control, handicap, moves, result. */
  sgf(): string {
    const time = timeControlToSgf(this.clockState.control);
    return writeSgf(this.engine, {
      blackName: this.record.blackName,
      whiteName: this.record.whiteName,
      date: new Date(this.record.createdAt).toISOString().slice(0, 10),
      gameName: `Parallax game ${this.id}`,
      ...(time.TM === undefined ? {} : { timeLimitSeconds: Number(time.TM) }),
      ...(time.OT === undefined ? {} : { overtime: time.OT }),
    });
  }

  clocks() {
    const now = this.#now();
    return writeClocks(this.clockState.state(now), now);
  }

  scoreShape(): Score$Shape {
    const s = this.engine.score(this.state.dead);
    const size = this.engine.size;
    const of = (owner: number) => {
      const out: { x: number; y: number }[] = [];
      s.ownership.forEach((o, i) => {
        if (o === owner && this.engine.at({ x: i % size, y: Math.floor(i / size) }) === undefined) {
          out.push({ x: i % size, y: Math.floor(i / size) });
        }
      });
      return out;
    };
    return { black: s.black, white: s.white, result: s.result, blackTerritory: of(1), whiteTerritory: of(2) };
  }

  /** Runs `op` after every earlier operation on this game. */
  serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => {});
    return run;
  }

  #stateJson(): string {
    return JSON.stringify({ ...this.state, clock: this.clockState.snapshot() });
  }

  /**
   * Stores a change already made in memory; if the store refuses or fails, this game is
   * forgotten (the next call rebuilds it from the store) and the error goes to the caller.
   */
  async #persist(write: (state: string) => Promise<{ kind: string; reason?: string }>): Promise<void> {
    try {
      const r = await write(this.#stateJson());
      if (r.kind !== "ok")
        throw new ParallaxError(ErrorCode.FAILED, `game ${this.id}: ${r.reason ?? r.kind}`);
    } catch (err) {
      await this.#reload();
      throw err;
    }
  }

  #announce(event: Omit<GameEvent$Shape, "clocks">, spectatorsOnly = false): void {
    this.listeners.notify(
      { event: { ...event, clocks: this.clocks() } as GameEvent$Shape, spectatorsOnly },
      (o) => (spectatorsOnly ? (o as ListenerOwner).spectator : true),
    );
    if (event.chat === undefined) this.pokeEngines();
  }

  #arm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.finished || this.#disposed) return;
    const at = this.clockState.timeoutAt();
    if (at === undefined) return;
    this.#timer = this.go.clock.setTimer(Math.max(0, at - this.#now()), () => {
      void this.serial(() => this.#checkFlag()).catch(() => {});
    });
  }

  async #checkFlag(): Promise<void> {
    if (this.finished || this.#disposed) return;
    const r = this.clockState.checkTimeout(this.#now());
    if (r.kind === "timeout") await this.#end(null, () => this.engine.concede(r.loser, "time"));
    else this.#arm();
  }

  /** Ends the game by `conclude` (resignation, time, forfeit, score): store, then announce. */
  async #end(actor: GoActor | null, conclude: () => unknown): Promise<string> {
    conclude();
    const result = this.engine.result ?? "";
    const now = this.#now();
    this.clockState.stop(now);
    // A game in which a player never moved is not rated: no rating is won from someone who left
    // before playing (or lost by them).
    const moved = new Set(this.engine.moves.map((m) => m.color));
    const ratings = this.record.ranked && moved.size === 2 ? await this.#ratings() : [];
    await this.#persist((state) =>
      this.go.store.finishGame(actor, this.id, { result, state, at: now, ratings }),
    );
    this.record = { ...this.record, phase: "finished", result, endedAt: now };
    this.#timer?.cancel();
    this.#announce({ ended: result });
    this.go.retire(this);
    return result;
  }

  /** Both players' Glicko-2 ratings after this game (one game, one rating period, as OGS does). */
  async #ratings(): Promise<GoRatingRecord[]> {
    const winner = this.engine.end?.winner;
    const score = winner === undefined ? 0.5 : winner === "black" ? 1 : 0;
    const ids = [this.record.blackId, this.record.whiteId] as const;
    const [b, w] = await Promise.all(ids.map((id) => this.go.store.getRating(id)));
    const now = (r: GoRatingRecord | undefined): Glicko2Rating =>
      r === undefined ? GLICKO2_UNRATED : { rating: r.rating, rd: r.deviation, volatility: r.volatility };
    const [nb, nw] = glicko2Game(now(b), now(w), score);
    return [
      {
        identityId: ids[0],
        rating: nb.rating,
        deviation: nb.rd,
        volatility: nb.volatility,
        games: (b?.games ?? 0) + 1,
      },
      {
        identityId: ids[1],
        rating: nw.rating,
        deviation: nw.rd,
        volatility: nw.volatility,
        games: (w?.games ?? 0) + 1,
      },
    ];
  }

  /** A move or a pass by `p`'s colour. */
  /** The caller's seat: their colour and their login, for the store's checks. */
  seatFor(p: PlayerPerspective): Seat {
    return { color: this.seat(p), actor: p.actor };
  }

  play(p: PlayerPerspective, point: Point | null): Promise<{ outcome: MoveOutcome$Shape }> {
    return this.playAs(this.seat(p), point, p.actor);
  }

  /** A move or a pass by `color` (a player's, or the seated engine's with `actor` null). */
  playAs(color: Color, point: Point | null, actor: GoActor | null): Promise<{ outcome: MoveOutcome$Shape }> {
    return this.serial(async () => {
      const now = this.#now();
      if (this.finished) return illegal(Illegal.GAME_OVER);
      const flag = this.clockState.checkTimeout(now);
      if (flag.kind === "timeout") {
        return { outcome: { ended: await this.#end(null, () => this.engine.concede(flag.loser, "time")) } };
      }
      const r = point === null ? this.engine.pass(color) : this.engine.play(color, point);
      if (!r.ok) return illegal(ILLEGAL[r.reason]);
      const clock = this.clockState.moveMade(color, now);
      if (clock.kind === "timeout") {
        this.engine.undo();
        return { outcome: { ended: await this.#end(null, () => this.engine.concede(clock.loser, "time")) } };
      }
      const number = this.engine.moveCount;
      this.state.times.push(now);
      this.state.undo = null;
      const scoring = this.engine.phase === "scoring";
      if (scoring) {
        this.clockState.pause(now);
        this.state.dead = [];
        this.state.accepted = [];
      }
      await this.#persist((state) =>
        this.go.store.appendMove(
          actor,
          this.id,
          number,
          { color, x: point?.x ?? null, y: point?.y ?? null, at: now },
          state,
          scoring ? "scoring" : "playing",
        ),
      );
      const moved = writeMove(r.move, number, now);
      this.#announce({ moved });
      if (scoring) this.#announce({ scoring: this.scoreShape() });
      this.#arm();
      return { outcome: { played: moved } };
    });
  }

  resign(who: Seat): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      if (this.finished) return illegal(Illegal.GAME_OVER);
      return { outcome: { ended: await this.#end(actor, () => this.engine.resign(color)) } };
    });
  }

  placeHandicap(who: Seat, points: Point[]): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      if (color !== "black") return illegal(Illegal.NOT_YOUR_TURN);
      const r = this.engine.placeHandicap(points);
      if (!r.ok) return illegal(ILLEGAL[r.reason]);
      if (!("points" in r)) throw new ParallaxError(ErrorCode.FAILED, "placeHandicap answered a move");
      const now = this.#now();
      this.state.handicap = [...r.points];
      this.clockState.moveMade("black", now);
      await this.#persist((state) => this.go.store.saveState(actor, this.id, "playing", state));
      this.#announce({ handicapPlaced: r.points.map(writePoint) });
      this.#arm();
      return { outcome: { ended: "" } };
    });
  }

  requestUndo(who: Seat): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      if (this.engine.phase === "handicap") return illegal(Illegal.HANDICAP_PENDING);
      if (this.finished || this.engine.phase !== "play") return illegal(Illegal.GAME_OVER);
      if (this.state.undo !== null) return illegal(Illegal.UNDO_PENDING);
      const n = this.engine.moveCount;
      if (this.state.undoRefusedAt[color] === n) return illegal(Illegal.TOO_EARLY);
      const moves = this.engine.moves;
      const last = moves.at(-1);
      const count = last?.color === color ? 1 : moves.at(-2)?.color === color ? 2 : 0;
      if (count === 0) return illegal(Illegal.NOTHING_TO_UNDO);
      this.state.undo = { by: color, moves: count };
      await this.#persist((state) => this.go.store.saveState(actor, this.id, "playing", state));
      this.#announce({ undoRequested: wireColor(color) });
      return { outcome: { ended: "" } };
    });
  }

  answerUndo(who: Seat, accept: boolean): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      const offer = this.state.undo;
      if (this.finished) return illegal(Illegal.GAME_OVER);
      if (offer === null || offer.by === color) return illegal(Illegal.NO_UNDO_PENDING);
      const from = this.engine.moveCount;
      this.state.undo = null;
      if (!accept) {
        this.state.undoRefusedAt[offer.by] = from;
        await this.#persist((state) => this.go.store.saveState(actor, this.id, "playing", state));
        this.#announce({ undoAnswered: false });
        return { outcome: { ended: "" } };
      }
      const now = this.#now();
      const moverBefore = this.engine.toMove;
      for (let i = 0; i < offer.moves; i++) this.engine.undo();
      this.state.times.length = this.engine.moveCount;
      if (this.engine.toMove !== moverBefore) {
        const c = this.clockState.moveMade(moverBefore, now);
        if (c.kind === "timeout") {
          return { outcome: { ended: await this.#end(null, () => this.engine.concede(c.loser, "time")) } };
        }
      }
      const keep = this.engine.moveCount;
      // A resumption after a pass that is taken back no longer happened.
      this.state.resumedAt = this.state.resumedAt.filter((n) => n <= keep);
      await this.#persist((state) => this.go.store.undoMoves(actor, this.id, from, keep, state));
      this.#announce({ undoAnswered: true });
      this.#announce({ undone: keep });
      this.#arm();
      return { outcome: { ended: "" } };
    });
  }

  markDead(who: Seat, point: Point, dead: boolean): Promise<{ outcome: MoveOutcome$Shape }> {
    const { actor } = who;
    return this.serial(async () => {
      if (this.finished) return illegal(Illegal.GAME_OVER);
      if (this.engine.phase !== "scoring") return illegal(Illegal.NOT_SCORING);
      const group = this.#group(point);
      if (group.length === 0) {
        throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `there is no stone at (${point.x}, ${point.y})`);
      }
      const key = (q: Point) => q.y * this.engine.size + q.x;
      const marked = new Map(this.state.dead.map((q) => [key(q), q]));
      for (const q of group) {
        if (dead) marked.set(key(q), q);
        else marked.delete(key(q));
      }
      this.state.dead = [...marked.values()];
      this.state.accepted = [];
      await this.#persist((state) => this.go.store.saveState(actor, this.id, "scoring", state));
      this.#announce({ scoring: this.scoreShape() });
      return { outcome: { ended: "" } };
    });
  }

  #group(start: Point): Point[] {
    const color = this.engine.at(start);
    if (color === undefined) return [];
    const size = this.engine.size;
    const seen = new Set([start.y * size + start.x]);
    const out: Point[] = [];
    const todo = [start];
    for (let q = todo.pop(); q !== undefined; q = todo.pop()) {
      out.push(q);
      for (const [dx, dy] of [
        [1, 0],
        [-1, 0],
        [0, 1],
        [0, -1],
      ] as const) {
        const n = { x: q.x + dx, y: q.y + dy };
        if (n.x < 0 || n.y < 0 || n.x >= size || n.y >= size || seen.has(n.y * size + n.x)) continue;
        if (this.engine.at(n) !== color) continue;
        seen.add(n.y * size + n.x);
        todo.push(n);
      }
    }
    return out;
  }

  acceptScore(who: Seat): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      if (this.finished) return illegal(Illegal.GAME_OVER);
      if (this.engine.phase !== "scoring") return illegal(Illegal.NOT_SCORING);
      if (!this.state.accepted.includes(color)) this.state.accepted.push(color);
      if (this.state.accepted.length === 2) {
        return {
          outcome: { ended: await this.#end(actor, () => this.engine.recordScore(this.state.dead)) },
        };
      }
      await this.#persist((state) => this.go.store.saveState(actor, this.id, "scoring", state));
      this.#announce({ scoreAccepted: wireColor(color) });
      return { outcome: { ended: "" } };
    });
  }

  resumePlay(who: Seat): Promise<{ outcome: MoveOutcome$Shape }> {
    const { actor } = who;
    return this.serial(async () => {
      if (this.finished) return illegal(Illegal.GAME_OVER);
      if (this.engine.phase !== "scoring") return illegal(Illegal.NOT_SCORING);
      this.engine.resume();
      this.state.resumedAt.push(this.engine.moveCount);
      this.state.dead = [];
      this.state.accepted = [];
      this.clockState.resume(this.#now());
      await this.#persist((state) => this.go.store.saveState(actor, this.id, "playing", state));
      this.#announce({ resumed: null });
      this.#arm();
      return { outcome: { ended: "" } };
    });
  }

  claimWin(who: Seat): Promise<{ outcome: MoveOutcome$Shape }> {
    const { color, actor } = who;
    return this.serial(async () => {
      if (this.finished) return illegal(Illegal.GAME_OVER);
      const opponent = otherColor(color);
      const since = this.#away.get(opponent);
      if (since === undefined) return illegal(Illegal.NOT_DISCONNECTED);
      if (this.go.clock.now() - since < this.go.limits.graceMs) return illegal(Illegal.TOO_EARLY);
      return { outcome: { ended: await this.#end(actor, () => this.engine.concede(opponent, "forfeit")) } };
    });
  }

  disconnected(identityId: number): void {
    const c = this.seatOf(identityId);
    if (c === undefined || this.finished || this.#away.has(c)) return;
    this.#away.set(c, this.go.clock.now());
    this.#announce({ disconnected: wireColor(c) });
  }

  reconnected(identityId: number): void {
    const c = this.seatOf(identityId);
    if (c === undefined || !this.#away.delete(c) || this.finished) return;
    this.#announce({ reconnected: wireColor(c) });
  }

  /** The caller's role for chat: players are players through either capability. */
  isSpectator(p: PlayerPerspective): boolean {
    return this.seatOf(p.identity.id) === undefined;
  }

  say(p: PlayerPerspective, text: string): void {
    const chars = [...text].length;
    if (chars === 0 || chars > this.go.limits.maxChatChars) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `a chat line is 1 to ${this.go.limits.maxChatChars} characters; got ${chars}`,
      );
    }
    // Control characters, and the bidirectional overrides that make a line read other than it is.
    if (/[\p{Cc}\u202a-\u202e\u2066-\u2069]/u.test(text)) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        "a chat line cannot contain control characters or bidirectional overrides",
      );
    }
    const now = this.#now();
    const recent = (this.#said.get(p.identity.id) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= this.go.limits.chatLinesPerMinute) {
      throw new ParallaxError(
        ErrorCode.QUOTA,
        `at most ${this.go.limits.chatLinesPerMinute} chat lines per minute in one game`,
      );
    }
    recent.push(now);
    this.#said.set(p.identity.id, recent);
    const spectator = this.isSpectator(p);
    const line: ChatLine$Shape = { speaker: p.identity.name, text, at: BigInt(now), spectator };
    this.chat.push(line);
    if (this.chat.length > this.go.limits.maxChatHistory) this.chat.shift();
    this.#announce({ chat: line }, spectator);
  }

  chatFor(p: PlayerPerspective, count: number): ChatLine$Shape[] {
    const spectator = this.isSpectator(p);
    const visible = this.chat.filter((l) => spectator || !l.spectator);
    return visible.slice(Math.max(0, visible.length - Math.min(count, 100)));
  }

  listen(p: PlayerPerspective, listener: GameListener): void {
    const spectator = this.isSpectator(p);
    const mine = this.#owners.get(p) ?? new Map<boolean, ListenerOwner>();
    this.#owners.set(p, mine);
    const owner = mine.get(spectator) ?? { perspective: p, spectator };
    mine.set(spectator, owner);
    this.listeners.add(owner, listener);
    p.listenedTo.add(this);
  }

  removeListeners(p: PlayerPerspective, reason: DetachReason): void {
    const mine = this.#owners.get(p);
    if (mine === undefined) return;
    for (const owner of mine.values()) this.listeners.removeOwner(owner, reason);
    this.#owners.delete(p);
  }

  movesFrom(from: number, count: number) {
    const all = this.engine.moves;
    const end = Math.min(all.length, from + Math.min(count, 1000));
    const out = [];
    for (let i = from; i < end; i++)
      out.push(writeMove(all[i] as (typeof all)[number], i + 1, this.state.times[i] ?? 0));
    return out;
  }

  board() {
    const ko = this.engine.koPoint;
    return {
      size: this.engine.size,
      points: this.engine.cells().slice(),
      toMove: wireColor(this.engine.toMove),
      moveCount: this.engine.moveCount,
      koPoint: ko === undefined ? { x: 0, y: 0 } : writePoint(ko),
      hasKo: ko !== undefined,
      dead: this.state.dead.map(writePoint),
    };
  }

  dispose(): void {
    this.#disposed = true;
    this.#timer?.cancel();
    this.listeners.clear();
    for (const seat of this.#seats) void seat.close();
  }
}

/** What players and spectators share: reading a game, following it, chat. */
class ViewMethods {
  constructor(readonly game: LiveGame) {}

  info() {
    return { info: this.game.info() };
  }

  board() {
    return { board: this.game.board() };
  }

  moves(_p: PlayerPerspective, params: GameView_moves_Params) {
    return { moves: this.game.movesFrom(params.from, params.count) };
  }

  clocks() {
    return { clocks: this.game.clocks() };
  }

  sgf() {
    return { sgf: this.game.sgf() };
  }

  chat(p: PlayerPerspective, params: GameView_chat_Params) {
    return { lines: this.game.chatFor(p, params.count) };
  }

  listen(p: PlayerPerspective, params: GameView_listen_Params) {
    this.game.listen(p, params.listener);
  }

  say(p: PlayerPerspective, params: GameView_say_Params) {
    this.game.say(p, params.text);
  }
}

class SpectatorViewable extends ViewMethods {}

class GameViewable extends ViewMethods {
  #point(params: { readonly point: { readonly x: number; readonly y: number } }): Point {
    return readPoint(params.point, this.game.engine.size);
  }

  move(p: PlayerPerspective, params: Game_move_Params) {
    return this.game.play(p, this.#point(params));
  }

  pass(p: PlayerPerspective) {
    return this.game.play(p, null);
  }

  resign(p: PlayerPerspective) {
    return this.game.resign(this.game.seatFor(p));
  }

  requestUndo(p: PlayerPerspective) {
    return this.game.requestUndo(this.game.seatFor(p));
  }

  answerUndo(p: PlayerPerspective, params: Game_answerUndo_Params) {
    return this.game.answerUndo(this.game.seatFor(p), params.accept);
  }

  markDead(p: PlayerPerspective, params: Game_markDead_Params) {
    return this.game.markDead(this.game.seatFor(p), this.#point(params), params.dead);
  }

  acceptScore(p: PlayerPerspective) {
    return this.game.acceptScore(this.game.seatFor(p));
  }

  resume(p: PlayerPerspective) {
    return this.game.resumePlay(this.game.seatFor(p));
  }

  claimWin(p: PlayerPerspective) {
    return this.game.claimWin(this.game.seatFor(p));
  }

  score(p: PlayerPerspective) {
    this.game.seat(p);
    return { score: this.game.scoreShape() };
  }

  placeHandicap(p: PlayerPerspective, params: Game_placeHandicap_Params) {
    const size = this.game.engine.size;
    const list = params.points;
    if (list.getLength() > 9) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "at most 9 handicap stones");
    const points = list.toArray().map((q, i) => readPoint(q, size, `points[${i}]`));
    return this.game.placeHandicap(this.game.seatFor(p), points);
  }
}
