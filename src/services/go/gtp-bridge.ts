/**
 * The GTP bot bridge: any external GTP engine as a Parallax Go client (`parallax gtp`). It logs
 * in with a bot's API key, attaches `GO_PLAYER`, accepts the challenges addressed to the bot by
 * name, and plays each of its games with its own engine (a `GtpPlayer`).
 *
 * Invariants:
 * - The bot acts only through its own Player perspective: it plays the seat the server gives it
 *   and never names a player.
 * - One engine per game, started when the bot first has to move and killed when the game ends
 *   or the bridge closes. Before each move the engine is brought to the server's record of the
 *   game (`moves`, and the setup stones rebuilt from `board` by taking the moves back), so an
 *   undo, a reconnect or a crash of the engine never leaves it playing another position.
 * - A move the server refuses is replaced by a pass (and logged); an engine that cannot go on
 *   (restarts used up) resigns the game rather than leave the opponent waiting.
 * - In the scoring phase the bot marks the stones its engine (`final_status_list dead`) holds
 *   dead, once per scoring phase, and accepts a marking only when it is its engine's.
 * - Each game's work runs one step at a time; events arriving meanwhile coalesce into one look
 *   at the game afterwards.
 *
 * The bridge does not open connections itself (services import no transport): `connect` is
 * given by the composition root (`src/cli.ts` connects to a URL; tests use the in-memory
 * harness).
 *
 * Tests: test/services/go/gtp-bridge.test.ts
 */
import { type Clock, systemClock, type Timer } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { attach } from "../../login/index.js";
import type { Root } from "../../wire/gen/broker.js";
import {
  Color as WireColor,
  type Game,
  GameEvent_Which,
  GameListener,
  type GameListener_event_Params,
  type MoveOutcome,
  MoveOutcome_Which,
  MoveRecord_Which,
  Phase,
  type Player,
} from "../../wire/gen/go.js";
import { GO_PLAYER } from "./go-keys.js";
import type { Point } from "./go-point.js";
import type { Color } from "./go-rules.js";
import type { GtpEngine, GtpEngineOptions } from "./gtp-engine.js";
import { type GtpHistory, type GtpMove, GtpPlayer } from "./gtp-player.js";

/** A connection to a broker, as the bridge needs it. */
export interface GtpBridgeConnection {
  readonly root: Root;
  close(): void;
  /** Called once if the connection drops. */
  onClose?(listener: (error: Error) => void): unknown;
}

export interface GtpBridgeOptions {
  /** Opens the connection (e.g. `connect(url)` and `bootstrap(Root)` in the CLI). */
  readonly connect: () => Promise<GtpBridgeConnection>;
  /** The bot's API key (its keyring must hold go/player). */
  readonly apiKey: string;
  /** The engine, e.g. `findGnuGo()` with `["--mode", "gtp"]`. */
  readonly command: string;
  readonly args?: readonly string[];
  /** Per-engine settings (timeout, response bound, restarts). */
  readonly engine?: Omit<GtpEngineOptions, "command" | "args"> & { readonly maxRestarts?: number };
  /** How often to look for new challenges and games. Default 3 s. */
  readonly pollMs?: number;
  /** Also accept open challenges (addressed to no one). Default false. */
  readonly acceptOpen?: boolean;
  readonly clock?: Clock;
  /** Where the bridge reports what it does. Default: stderr. */
  readonly log?: (line: string) => void;
}

export interface GtpBridge {
  /** The bot's user name. */
  readonly name: string;
  /** Looks for challenges and games now (the bridge also does so every `pollMs`). */
  poll(): Promise<void>;
  /** Ids of the games being played. */
  readonly games: ReadonlySet<bigint>;
  /** Settles when the given game's driver has nothing left to do (for tests). */
  idle(id: bigint): Promise<void>;
  /** The engine playing the given game, once started (for tests and diagnostics). */
  engineOf(id: bigint): GtpEngine | undefined;
  /** Stops every engine and closes the connection. */
  close(): Promise<void>;
  /** Settles when the bridge closed (by `close()` or because the connection dropped). */
  readonly closed: Promise<void>;
}

export const GTP_BRIDGE_DEFAULT_POLL_MS = 3000;

/** Connects, logs in with the API key, and starts playing. */
export async function runGtpBridge(options: GtpBridgeOptions): Promise<GtpBridge> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const clock = options.clock ?? systemClock;
  const pollMs = options.pollMs ?? GTP_BRIDGE_DEFAULT_POLL_MS;
  const connection = await options.connect();
  let player: Player;
  let name: string;
  try {
    const { identity } = await connection.root.loginWithApiKey({ key: options.apiKey });
    name = (await identity.whoami()).info.name;
    player = attach(identity, GO_PLAYER);
    await player.rating();
  } catch (err) {
    connection.close();
    throw err;
  }

  const drivers = new Map<bigint, GameDriver>();
  let timer: Timer | undefined;
  let closing = false;
  let resolveClosed = (): void => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });

  const shutdown = async (): Promise<void> => {
    if (closing) return closed;
    closing = true;
    timer?.cancel();
    await Promise.all([...drivers.values()].map((d) => d.stop()));
    drivers.clear();
    connection.close();
    resolveClosed();
  };
  connection.onClose?.((error) => {
    if (closing) return;
    log(`gtp bridge: the connection closed (${error.message}); stopping`);
    void shutdown();
  });

  const poll = async (): Promise<void> => {
    if (closing) return;
    const { challenges } = await player.openChallenges();
    for (const c of challenges.toArray()) {
      const to = c.terms.opponent;
      if (!(to.normalize("NFKC") === name.normalize("NFKC") || (options.acceptOpen === true && to === "")))
        continue;
      if (c.challenger === name) continue;
      try {
        await player.accept({ id: c.id });
        log(`gtp bridge: accepted challenge ${c.id} from ${c.challenger}`);
      } catch (err) {
        log(`gtp bridge: could not accept challenge ${c.id}: ${(err as Error).message}`);
      }
    }
    const { games } = await player.games({ includeFinished: false });
    const unfinished = new Set(games.toArray().map((g) => g.id));
    for (const [id, d] of drivers) {
      // A game that ended while its events were missed; else a look in case one was.
      if (!unfinished.has(id)) await d.stop();
      else d.wake();
    }
    for (const info of games.toArray()) {
      if (closing || drivers.has(info.id)) continue;
      const { game } = await player.game({ id: info.id });
      const d = new GameDriver(info.id, game, name, options, log, () => drivers.delete(info.id));
      drivers.set(info.id, d);
      await d.start();
    }
  };
  const schedule = (): void => {
    if (closing) return;
    timer = clock.setTimer(pollMs, () => {
      poll().then(schedule, (err: unknown) => {
        if (!closing) log(`gtp bridge: poll failed: ${(err as Error).message}`);
        schedule();
      });
    });
  };
  log(`gtp bridge: logged in as ${name}; engine ${options.command} ${(options.args ?? []).join(" ")}`);
  await poll();
  schedule();

  return {
    name,
    poll,
    get games() {
      return new Set(drivers.keys());
    },
    idle: (id) => drivers.get(id)?.idle() ?? Promise.resolve(),
    engineOf: (id) => drivers.get(id)?.engine,
    close: shutdown,
    closed,
  };
}

const colorOf = (c: WireColor): Color => (c === WireColor.BLACK ? "black" : "white");

/** Plays one game: wakes on every event, looks at the game, moves when it is the bot's turn. */
class GameDriver {
  readonly #game: Game;
  readonly #name: string;
  readonly #options: GtpBridgeOptions;
  readonly #log: (line: string) => void;
  readonly #forget: () => void;
  #player: GtpPlayer | undefined;
  #running: Promise<void> = Promise.resolve();
  #dirty = false;
  #busy = false;
  #stopped = false;
  /** The move count of the scoring phase whose dead stones the bot marked. */
  #markedAt = -1;
  /** The marking the bot accepted, until the marking changes (a `scoring` event). */
  #accepted: string | undefined;

  constructor(
    id: bigint,
    game: Game,
    name: string,
    options: GtpBridgeOptions,
    log: (line: string) => void,
    forget: () => void,
  ) {
    this.#game = game;
    this.#name = name;
    this.#options = options;
    this.#log = (line) => log(`gtp bridge: game ${id}: ${line}`);
    this.#forget = forget;
  }

  async start(): Promise<void> {
    const listener = GameListener.server({
      event: ({ event }: GameListener_event_Params) => {
        const w = event.which();
        if (w === GameEvent_Which.SCORING || w === GameEvent_Which.RESUMED) this.#accepted = undefined;
        if (w !== GameEvent_Which.CHAT) this.wake();
      },
    });
    await this.#game.listen({ listener });
    this.wake();
  }

  get engine(): GtpEngine | undefined {
    return this.#player?.engine;
  }

  idle(): Promise<void> {
    return this.#busy ? this.#running.then(() => this.idle()) : Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#forget();
    const p = this.#player;
    this.#player = undefined;
    await p?.close();
  }

  /** Looks at the game soon (now, or after the step under way). */
  wake(): void {
    this.#dirty = true;
    if (this.#busy || this.#stopped) return;
    this.#busy = true;
    this.#running = (async () => {
      while (this.#dirty && !this.#stopped) {
        this.#dirty = false;
        try {
          await this.#step();
        } catch (err) {
          if (!this.#stopped) this.#log(`${(err as Error).message}`);
        }
      }
      this.#busy = false;
    })();
  }

  async #step(): Promise<void> {
    const { info } = await this.#game.info();
    if (info.phase === Phase.FINISHED) {
      this.#log(`ended: ${info.result}`);
      await this.stop();
      return;
    }
    const me: Color | undefined =
      info.black === this.#name ? "black" : info.white === this.#name ? "white" : undefined;
    if (me === undefined) {
      await this.stop();
      return;
    }
    const rules = info.rules;
    if (this.#stopped) return;
    this.#player ??= new GtpPlayer({
      ...this.#options.engine,
      command: this.#options.command,
      args: this.#options.args,
      size: rules.size,
      komi: rules.komi,
      log: this.#log,
    });
    const history = await this.#history(rules.size, rules.handicap);
    if (
      rules.freeHandicap &&
      rules.handicap >= 2 &&
      history.moves.length === 0 &&
      history.setup?.length === 0
    ) {
      if (me === "black") await this.#placeHandicap(rules.handicap);
      return;
    }
    if (info.phase === Phase.SCORING) {
      await this.#score(history, info.moveCount);
      return;
    }
    if (colorOf(info.toMove) !== me) return;
    let choice: Awaited<ReturnType<GtpPlayer["genmove"]>>;
    try {
      choice = await this.#player.genmove(me, history);
    } catch (err) {
      const e = err as Error;
      if (this.#stopped) return;
      if (e instanceof ParallaxError && e.code === ErrorCode.DISCONNECTED) {
        this.#log(`the engine cannot go on (${e.message}); resigning`);
        this.#report("resign", await this.#game.resign());
        return;
      }
      this.#log(`the engine failed (${e.message}); passing`);
      this.#report("pass", await this.#game.pass());
      return;
    }
    if (this.#stopped) return;
    if (choice.kind === "resign") {
      this.#report("resign", await this.#game.resign());
    } else if (choice.kind === "pass") {
      this.#report("pass", await this.#game.pass());
    } else {
      const { outcome } = await this.#game.move({ point: choice.point });
      if (outcome.which() === MoveOutcome_Which.ILLEGAL) {
        this.#log(
          `the server refused the engine's move (${choice.point.x}, ${choice.point.y}) (illegal #${outcome.illegal}); passing`,
        );
        this.#report("pass", await this.#game.pass());
      } else this.#report(`(${choice.point.x}, ${choice.point.y})`, { outcome });
    }
  }

  #report(what: string, { outcome }: { outcome: MoveOutcome }): void {
    if (outcome.which() === MoveOutcome_Which.ILLEGAL)
      this.#log(`${what} refused (illegal #${outcome.illegal})`);
    else if (outcome.which() === MoveOutcome_Which.ENDED)
      this.#log(`${what}: the game ended ${outcome.ended}`);
  }

  /** The server's record: the moves, and the setup stones found by taking them back from the board. */
  async #history(size: number, handicap: number): Promise<GtpHistory> {
    const records: { color: Color; point: Point | "pass"; captured: Point[] }[] = [];
    for (;;) {
      const { moves } = await this.#game.moves({ from: records.length, count: 1000 });
      for (const m of moves.toArray()) {
        records.push({
          color: colorOf(m.color),
          point: m.which() === MoveRecord_Which.PLAY ? { x: m.play.x, y: m.play.y } : "pass",
          captured: m.captured.toArray().map((p) => ({ x: p.x, y: p.y })),
        });
      }
      if (moves.getLength() < 1000) break;
    }
    const moves: GtpMove[] = records.map(({ color, point }) => ({ color, point }));
    if (handicap === 0) return { setup: [], moves };
    const { board } = await this.#game.board();
    const points = Uint8Array.from(board.points.slice());
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i] as (typeof records)[number];
      if (r.point !== "pass") points[r.point.y * size + r.point.x] = 0;
      for (const p of r.captured) points[p.y * size + p.x] = r.color === "black" ? 2 : 1;
    }
    const setup: Point[] = [];
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) if (points[y * size + x] === 1) setup.push({ x, y });
    return { setup, moves };
  }

  async #placeHandicap(stones: number): Promise<void> {
    const player = this.#player as GtpPlayer;
    const points = await player.ask({ moves: [] }, (e) => e.placeFreeHandicap(stones));
    const { outcome } = await this.#game.placeHandicap({ points });
    this.#report("placing the handicap", { outcome });
  }

  async #score(history: GtpHistory, moveCount: number): Promise<void> {
    const player = this.#player as GtpPlayer;
    const dead = await player.ask(history, (e) => e.finalStatusList("dead"));
    const key = (p: Point): string => `${p.x},${p.y}`;
    const deadKeys = new Set(dead.map(key));
    const marked = async (): Promise<Set<string>> =>
      new Set((await this.#game.board()).board.dead.toArray().map((p) => key({ x: p.x, y: p.y })));
    let now = await marked();
    if (this.#markedAt !== moveCount) {
      this.#markedAt = moveCount;
      for (const p of dead) {
        if (now.has(key(p))) continue;
        await this.#game.markDead({ point: p, dead: true });
        now = await marked();
      }
      for (const k of [...now]) {
        if (deadKeys.has(k) || !now.has(k)) continue;
        const [x, y] = k.split(",").map(Number) as [number, number];
        await this.#game.markDead({ point: { x, y }, dead: false });
        now = await marked();
      }
    }
    const marking = [...now].sort().join(" ");
    if (now.size === deadKeys.size && [...now].every((k) => deadKeys.has(k))) {
      if (this.#accepted === marking) return;
      this.#accepted = marking;
      this.#report("accepting the score", await this.#game.acceptScore());
    } else {
      this.#log(
        "the dead stones marked are not the engine's; not accepting (resume or mark them as the engine does)",
      );
    }
  }
}
