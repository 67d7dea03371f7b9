/**
 * One game on the Go page, played or watched: the board (click to play; in the scoring phase,
 * click a stone to mark its group dead or alive again), both players with their captures and
 * running clocks, the state of play, pass / resign / undo / accept score / resume, undo offers
 * from the opponent, the score, the move list, the game's chat and an SGF download.
 *
 * A player holds a `Game` (its calls play the player's own seat: the page never names a colour
 * or a user), a spectator a `Spectator`, which has no method that changes the game; the page
 * shows a spectator the same board with its points disabled.
 *
 * Invariants:
 * - What is shown is what the server last answered: every event (moves, undo, scoring, end) makes
 *   the panel read `info`, `board` and `clocks` again (coalesced: one read at a time, one more if
 *   events came during it), and the board is redrawn from that reading, never patched, so a move
 *   heard twice, or heard and then read, shows one stone. The move list is keyed by move number.
 * - After a reconnect (`reattach`) the panel asks its Player for the game again (`game` or
 *   `watch`), follows it again (GameFollowers: one listener per game and role per attachment,
 *   shared with later panels on the same game) and reads everything again; events meant for an
 *   earlier connection or a closed panel are not shown.
 * - Chat lines are read once on (re)connect and then heard live; a line heard while the history
 *   was being read is shown once. Everything a user typed (chat, names) is written as text.
 * - A refused move (`illegal`) is shown with its reason and changes nothing on the board.
 *
 * Markup: the "go-game" section of src/web/pages/go.html (ids used here).
 *
 * Tests: test/web/go.test.ts
 */
import { systemClock, type Timer } from "../../clock.js";
import { ErrorCode, toParallaxError } from "../../errors.js";
import {
  Color,
  type Game,
  type GameEvent,
  GameEvent_Which,
  type GameInfo,
  type GameView,
  Illegal,
  type MoveOutcome,
  MoveOutcome_Which,
  MoveRecord_Which,
  Phase,
  type Player,
  type Score,
  type ClockState as WireClockState,
} from "../../wire/gen/go.js";
import { byId, type DomControl, type DomElement, el, setText, show } from "../app/dom.js";
import { BoardView } from "./board-view.js";
import type { GameFollowers, GameSink } from "./game-followers.js";
import { type ClockReading, clockText, describeTime, projectClock, type TimeTerms } from "./clock-view.js";
import { type BoardPoint, pointName, type Territory } from "./coords.js";

/** A game's GameInfo, read out of its message. */
export interface GameSummary {
  readonly id: number;
  readonly black: string;
  readonly white: string;
  readonly size: number;
  readonly komi: number;
  readonly handicap: number;
  readonly time: TimeTerms;
  readonly ranked: boolean;
  readonly phase: number;
  readonly toMove: number;
  readonly moveCount: number;
  readonly result: string;
  readonly blackCaptures: number;
  readonly whiteCaptures: number;
}

export function readGameInfo(i: GameInfo): GameSummary {
  const t = i.time;
  return {
    id: Number(i.id),
    black: i.black,
    white: i.white,
    size: i.rules.size,
    komi: i.rules.komi,
    handicap: i.rules.handicap,
    time: {
      system: t.system,
      mainSeconds: t.mainSeconds,
      periodSeconds: t.periodSeconds,
      periods: t.periods,
      stonesPerPeriod: t.stonesPerPeriod,
      incrementSeconds: t.incrementSeconds,
      maxSeconds: t.maxSeconds,
      perMoveSeconds: t.perMoveSeconds,
    },
    ranked: i.ranked,
    phase: i.phase,
    toMove: i.toMove,
    moveCount: i.moveCount,
    result: i.result,
    blackCaptures: i.blackCaptures,
    whiteCaptures: i.whiteCaptures,
  };
}

const ILLEGAL_TEXT: Readonly<Record<number, string>> = {
  [Illegal.OCCUPIED]: "that point is occupied",
  [Illegal.SUICIDE]: "that stone would have no liberties (suicide)",
  [Illegal.KO]: "ko: the stone just taken cannot be retaken at once",
  [Illegal.SUPERKO]: "the position would repeat an earlier one (superko)",
  [Illegal.NOT_YOUR_TURN]: "it is not your turn",
  [Illegal.GAME_OVER]: "play has stopped",
  [Illegal.NOT_SCORING]: "stones are marked dead only in the scoring phase",
  [Illegal.NO_UNDO_PENDING]: "no undo request is waiting",
  [Illegal.UNDO_PENDING]: "an undo request is already waiting for an answer",
  [Illegal.NOTHING_TO_UNDO]:
    "there is nothing to undo (or the opponent refused: ask again after the next move)",
  [Illegal.TOO_EARLY]: "the opponent's grace period has not run out",
  [Illegal.NOT_DISCONNECTED]: "the opponent is connected",
  [Illegal.HANDICAP_PENDING]: "black places the handicap stones first",
  [Illegal.NOT_HANDICAP_PHASE]: "the handicap stones are placed already",
  [Illegal.MOVE_LIMIT]: "the game holds as many moves as a game may",
};

/** Why a move was refused, in words. */
export function illegalText(reason: number): string {
  return ILLEGAL_TEXT[reason] ?? `refused (${reason})`;
}

const colorName = (c: number): "black" | "white" => (c === Color.BLACK ? "black" : "white");

interface MoveEntry {
  readonly number: number;
  readonly color: number;
  readonly point: BoardPoint | undefined;
}

interface ScoreView {
  readonly black: number;
  readonly white: number;
  readonly result: string;
  readonly blackTerritory: readonly BoardPoint[];
  readonly whiteTerritory: readonly BoardPoint[];
}

interface ChatEntry {
  readonly speaker: string;
  readonly text: string;
  readonly at: number;
  readonly spectator: boolean;
}

/** What the panel keeps of one event (the event's message is gone after the call). */
type HeardEvent =
  | { readonly kind: "refresh"; readonly note?: string }
  | { readonly kind: "undoRequested"; readonly by: number }
  | { readonly kind: "undoAnswered"; readonly accepted: boolean }
  | { readonly kind: "undone"; readonly moveCount: number }
  | { readonly kind: "scoring"; readonly score: ScoreView }
  | { readonly kind: "scoreAccepted"; readonly by: number }
  | { readonly kind: "chat"; readonly line: ChatEntry }
  | { readonly kind: "connection"; readonly color: number; readonly connected: boolean };

interface ClockPair {
  readonly black: ClockReading;
  readonly white: ClockReading;
  readonly paused: boolean;
  /** This page's clock when the reading arrived. */
  readonly receivedAt: number;
}

const TICK_MS = 250;

export interface PanelOptions {
  readonly id: number;
  readonly me: string;
  readonly spectator: boolean;
  readonly player: () => Player;
  /** The page's listeners (one per game and role per attachment, shared by the panels). */
  readonly followers: GameFollowers;
  /** The user left the game (the "Back" button). */
  readonly onLeave: () => void;
}

export class GamePanel {
  readonly id: number;
  readonly spectator: boolean;
  readonly #me: string;
  readonly #player: () => Player;
  readonly #followers: GameFollowers;
  readonly #key: string;
  #sink: GameSink | undefined;
  #view: GameView | undefined;
  #game: Game | undefined;
  /** Bumped on every (re)connect and on close: listeners of older generations are dropped. */
  #generation = 0;
  #closed = false;
  #info: GameSummary | undefined;
  #board: BoardView | undefined;
  #points: Uint8Array = new Uint8Array(0);
  #dead = new Set<number>();
  #moves: MoveEntry[] = [];
  #score: ScoreView | undefined;
  #accepted = new Set<number>();
  #clocks: ClockPair | undefined;
  #tick: Timer | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;
  #undoFrom: number | undefined;
  #chatPending: ChatEntry[] | undefined;
  #sgfUrl: string | undefined;
  readonly #cleanups: Array<() => void> = [];

  private constructor(options: PanelOptions) {
    this.id = options.id;
    this.spectator = options.spectator;
    this.#me = options.me;
    this.#player = options.player;
    this.#followers = options.followers;
    this.#key = `${options.spectator ? "watch" : "play"}:${options.id}`;
  }

  /** Opens game `id` in the page's game section (as a player, or read-only as a spectator). */
  static async open(options: PanelOptions): Promise<GamePanel> {
    const panel = new GamePanel(options);
    panel.#wire(options.onLeave);
    try {
      await panel.#connect();
    } catch (err) {
      panel.close();
      throw err;
    }
    return panel;
  }

  /** The connection came back: ask for the game again and read everything again. */
  async reattach(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#connect();
      this.#notice("");
    } catch (err) {
      this.#failed(err);
    }
  }

  /** Leaves the game: stops listening, clocks and timers; the section is emptied and hidden. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#tick?.cancel();
    if (this.#sink !== undefined) this.#followers.unfollow(this.#key, this.#sink);
    for (const c of this.#cleanups.splice(0)) c();
    this.#view?.dispose();
    this.#view = undefined;
    this.#game = undefined;
    if (this.#sgfUrl !== undefined) URL.revokeObjectURL(this.#sgfUrl);
    byId("go-board").replaceChildren();
    byId("go-chat").replaceChildren();
    byId("go-moves").replaceChildren();
    show(byId("go-game"), false);
  }

  // --- connecting ------------------------------------------------------------------------------

  async #connect(): Promise<void> {
    const generation = ++this.#generation;
    const player = this.#player();
    let view: GameView;
    let game: Game | undefined;
    if (this.spectator) {
      using answer = player.watch({ id: BigInt(this.id) });
      view = (await answer).spectator;
    } else {
      using answer = player.game({ id: BigInt(this.id) });
      game = (await answer).game;
      view = game;
    }
    if (this.#closed || generation !== this.#generation) {
      view.dispose();
      return;
    }
    this.#view?.dispose();
    this.#view = view;
    this.#game = game;
    this.#chatPending = [];
    // Moves may have been taken back and replaced while away: read the list again.
    this.#moves = [];
    if (this.#sink !== undefined) this.#followers.unfollow(this.#key, this.#sink);
    const sink = (event: GameEvent) => {
      if (!this.#closed && generation === this.#generation) this.#heard(readEvent(event), event);
    };
    this.#sink = sink;
    await this.#followers.follow(this.#key, player, view, sink);
    await Promise.all([this.#refresh(), this.#loadChat(view, generation)]);
  }

  async #loadChat(view: GameView, generation: number): Promise<void> {
    let lines: ChatEntry[];
    {
      using answer = view.chat({ count: 100 });
      lines = (await answer).lines.toArray().map((l) => ({
        speaker: l.speaker,
        text: l.text,
        at: Number(l.at),
        spectator: l.spectator,
      }));
    }
    if (generation !== this.#generation) return;
    const seen = new Set(lines.map(chatKey));
    const pending = this.#chatPending ?? [];
    this.#chatPending = undefined;
    const list = byId("go-chat");
    list.replaceChildren(...lines.map((l) => this.#chatItem(l)));
    for (const l of pending) if (!seen.has(chatKey(l))) list.append(this.#chatItem(l));
    scrollDown(list);
  }

  // --- events ------------------------------------------------------------------------------------

  #heard(e: HeardEvent, event: GameEvent): void {
    if (event.hasClocks())
      this.#setClocks(readClocks(event.clocks.black, event.clocks.white, event.clocks.paused));
    const other = (c: number) =>
      this.#info === undefined ? colorName(c) : c === Color.BLACK ? this.#info.black : this.#info.white;
    switch (e.kind) {
      case "refresh":
        if (e.note !== undefined) this.#note(e.note);
        void this.#refresh();
        return;
      case "undoRequested": {
        const mine = this.#myColor();
        if (mine !== undefined && e.by !== mine) {
          setText(byId("go-undo-text"), `${other(e.by)} asks to take back their last move.`);
          show(byId("go-undo-offer"), true);
        } else {
          this.#note(
            mine === undefined
              ? `${other(e.by)} asks to take back a move.`
              : "You asked to take back your last move: waiting for the answer.",
          );
        }
        return;
      }
      case "undoAnswered":
        show(byId("go-undo-offer"), false);
        this.#note(e.accepted ? "The undo was accepted." : "The undo was refused.");
        void this.#refresh();
        return;
      case "undone":
        // Moves after this count were taken back; a new move may take one of their numbers.
        if (this.#moves.length > e.moveCount) this.#moves.length = e.moveCount;
        void this.#refresh();
        return;
      case "scoring":
        this.#score = e.score;
        this.#accepted.clear();
        void this.#refresh();
        return;
      case "scoreAccepted":
        this.#accepted.add(e.by);
        this.#note(`${other(e.by)} accepted the score.`);
        this.#renderControls();
        return;
      case "chat":
        if (this.#chatPending !== undefined) this.#chatPending.push(e.line);
        else {
          const list = byId("go-chat");
          list.append(this.#chatItem(e.line));
          scrollDown(list);
        }
        return;
      case "connection":
        this.#note(
          e.connected
            ? `${other(e.color)} is back.`
            : `${other(e.color)}'s connection dropped; their clock keeps running.`,
        );
        return;
    }
  }

  /** Reads info, board, clocks (and the score) again; at most one read at a time. */
  #refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = async (): Promise<void> => {
      do {
        this.#again = false;
        try {
          await this.#readAll();
        } catch (err) {
          const e = toParallaxError(err);
          // Reconnecting: reattach reads everything again.
          if (e.code !== ErrorCode.DISCONNECTED && e.code !== ErrorCode.DISPOSED) this.#failed(e);
          return;
        }
      } while (this.#again && !this.#closed);
    };
    this.#refreshing = run().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #readAll(): Promise<void> {
    const view = this.#view;
    if (view === undefined || this.#closed) return;
    const generation = this.#generation;
    let info: GameSummary;
    let points: Uint8Array;
    let dead: Set<number>;
    let moveCount: number;
    let clocks: ClockPair;
    {
      using infoAnswer = view.info();
      using boardAnswer = view.board();
      using clockAnswer = view.clocks();
      const [i, b, c] = await Promise.all([infoAnswer, boardAnswer, clockAnswer]);
      info = readGameInfo(i.info);
      const board = b.board;
      points = Uint8Array.from(board.points);
      moveCount = board.moveCount;
      dead = new Set(board.dead.toArray().map((p) => p.y * board.size + p.x));
      const k = c.clocks;
      clocks = readClocks(k.black, k.white, k.paused);
    }
    if (generation !== this.#generation) return;
    if (this.#moves.length > moveCount) this.#moves.length = moveCount;
    // No `using` in this loop: esbuild hoists a loop body's disposal state out of the loop.
    while (this.#moves.length < moveCount) {
      const answer = view.moves({ from: this.#moves.length, count: 1000 });
      let got: MoveEntry[];
      try {
        got = (await answer).moves.toArray().map((m) => ({
          number: m.number,
          color: m.color,
          point: m.which() === MoveRecord_Which.PLAY ? { x: m.play.x, y: m.play.y } : undefined,
        }));
      } finally {
        answer.dispose();
      }
      if (generation !== this.#generation) return;
      if (got.length === 0) break;
      for (const m of got) if (m.number === this.#moves.length + 1) this.#moves.push(m);
    }
    const game = this.#game;
    if (game !== undefined && (info.phase === Phase.SCORING || scoredResult(info.result))) {
      using answer = game.score();
      this.#score = readScore((await answer).score);
      if (generation !== this.#generation) return;
    }
    if (info.phase === Phase.PLAYING) {
      this.#score = undefined;
      this.#accepted.clear();
    }
    if (info.phase !== Phase.PLAYING || info.moveCount < (this.#undoFrom ?? 0))
      show(byId("go-undo-offer"), false);
    this.#undoFrom = info.moveCount;
    this.#info = info;
    this.#points = points;
    this.#dead = dead;
    this.#setClocks(clocks);
    this.#render();
  }

  // --- rendering ---------------------------------------------------------------------------------

  #render(): void {
    const info = this.#info;
    if (info === undefined) return;
    if (this.#board === undefined || this.#board.size !== info.size) {
      this.#board = new BoardView(info.size, `Board of game ${info.id}, ${info.size} by ${info.size}`, (p) =>
        this.#picked(p),
      );
      byId("go-board").replaceChildren(this.#board.element);
    }
    const last = this.#moves[this.#moves.length - 1]?.point;
    const showTerritory =
      this.#score !== undefined && (info.phase === Phase.SCORING || scoredResult(info.result));
    this.#board.render({
      points: this.#points,
      dead: this.#dead,
      last,
      territory:
        showTerritory && this.#score !== undefined ? territoryMap(this.#score, info.size) : undefined,
    });
    this.#board.setEnabled(this.#game !== undefined && info.phase !== Phase.FINISHED);
    setText(byId("go-game-title"), `Game ${info.id}: ${info.black} (black) vs ${info.white} (white)`);
    setText(
      byId("go-game-terms"),
      `${info.size}×${info.size}, komi ${info.komi}${info.handicap > 0 ? `, ${info.handicap} handicap stones` : ""}, ${describeTime(info.time)}, ${info.ranked ? "ranked" : "free"}${this.spectator ? " — you are watching" : ""}`,
    );
    setText(byId("go-black-name"), info.black);
    setText(byId("go-white-name"), info.white);
    setText(byId("go-black-captures"), `captures: ${info.blackCaptures}`);
    setText(byId("go-white-captures"), `captures: ${info.whiteCaptures}`);
    setText(byId("go-game-state"), this.#stateText(info));
    byId("go-game").dataset.phase =
      info.phase === Phase.PLAYING ? "playing" : info.phase === Phase.SCORING ? "scoring" : "finished";
    this.#renderScore(info);
    this.#renderMoves(info.size);
    this.#renderControls();
    this.#renderClocks();
  }

  #stateText(info: GameSummary): string {
    const mine = this.#myColor();
    if (info.phase === Phase.FINISHED) return `Finished: ${describeResult(info.result, info)}`;
    if (info.phase === Phase.SCORING) {
      return this.spectator
        ? "Both passed: the players are marking dead stones."
        : "Both passed: click a stone to mark its group dead (or alive again), then accept the score.";
    }
    const who = info.toMove === Color.BLACK ? info.black : info.white;
    const turn = `Move ${info.moveCount + 1}: ${colorName(info.toMove)} (${who}) to play`;
    return mine === undefined ? turn : mine === info.toMove ? `${turn} — your turn` : turn;
  }

  #renderScore(info: GameSummary): void {
    const s = this.#score;
    const scored = info.phase === Phase.SCORING || scoredResult(info.result);
    show(byId("go-score"), s !== undefined && scored);
    if (s === undefined || !scored) return;
    const final = info.phase === Phase.FINISHED ? "Final score" : "Score of this marking";
    setText(
      byId("go-score-text"),
      `${final}: black ${s.black}, white ${s.white} (komi included) — ${describeResult(s.result, info)}`,
    );
    const accepted = [...this.#accepted].map((c) => (c === Color.BLACK ? info.black : info.white));
    setText(
      byId("go-score-accepts"),
      info.phase === Phase.SCORING && accepted.length > 0 ? `Accepted by ${accepted.join(" and ")}.` : "",
    );
  }

  #renderMoves(size: number): void {
    const list = byId("go-moves");
    const items = list.children;
    // Keyed by number: what an undo took back leaves, a number played again is rewritten.
    for (let i = items.length - 1; i >= this.#moves.length; i--) (items[i] as DomElement).remove();
    this.#moves.forEach((m, i) => {
      const where = m.point === undefined ? "pass" : pointName(m.point, size);
      const line = `${m.number}. ${colorName(m.color)} ${where}`;
      const item = items[i];
      if (item === undefined) list.append(el("li", { "data-number": String(m.number) }, line));
      else if (item.textContent !== line) setText(item, line);
    });
    scrollDown(list);
  }

  #renderControls(): void {
    const info = this.#info;
    const player = this.#game !== undefined;
    show(byId("go-controls"), player);
    if (info === undefined || !player) return;
    const playing = info.phase === Phase.PLAYING;
    const scoring = info.phase === Phase.SCORING;
    const mine = this.#myColor();
    show(byId("go-pass"), playing);
    show(byId("go-resign"), info.phase !== Phase.FINISHED);
    show(byId("go-undo"), playing);
    show(byId("go-accept-score"), scoring);
    show(byId("go-resume"), scoring);
    byId<DomControl>("go-accept-score").disabled = mine !== undefined && this.#accepted.has(mine);
    if (info.phase === Phase.FINISHED) {
      show(byId("go-resign-confirm"), false);
      show(byId("go-undo-offer"), false);
    }
  }

  #renderClocks(): void {
    const info = this.#info;
    const clocks = this.#clocks;
    if (info === undefined || clocks === undefined) return;
    const elapsed = systemClock.now() - clocks.receivedAt;
    const stopped = clocks.paused || info.phase !== Phase.PLAYING;
    for (const [name, reading] of [
      ["black", clocks.black],
      ["white", clocks.white],
    ] as const) {
      const node = byId(`go-${name}-clock`);
      const projected = projectClock(info.time, reading, elapsed, stopped);
      setText(node, clockText(info.time, projected));
      node.dataset.running = reading.running && !stopped ? "true" : "false";
      node.dataset.low = projected.out ? "out" : "";
    }
  }

  #setClocks(clocks: ClockPair): void {
    this.#clocks = clocks;
    this.#renderClocks();
    this.#tick?.cancel();
    this.#tick = undefined;
    const running = (clocks.black.running || clocks.white.running) && !clocks.paused;
    if (!running || this.#closed) return;
    const step = (): void => {
      if (this.#closed || this.#clocks !== clocks) return;
      this.#renderClocks();
      this.#tick = systemClock.setTimer(TICK_MS, step);
    };
    this.#tick = systemClock.setTimer(TICK_MS, step);
  }

  #chatItem(l: ChatEntry): DomElement {
    const d = new Date(l.at);
    const time = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
    return el(
      "li",
      { class: l.spectator ? "msg spectator" : "msg" },
      el("span", { class: "author" }, l.speaker),
      l.spectator ? el("span", { class: "meta" }, " (watching)") : null,
      " ",
      el("time", { datetime: d.toISOString() }, time),
      " ",
      el("span", { class: "text" }, l.text),
    );
  }

  #note(text: string): void {
    setText(byId("go-events"), text);
  }

  #notice(text: string): void {
    setText(byId("go-notice"), text);
  }

  #failed(err: unknown): void {
    const e = toParallaxError(err);
    this.#notice(
      e.code === ErrorCode.DISCONNECTED
        ? "Not connected right now: try again once the page has reconnected."
        : e.message,
    );
  }

  #myColor(): number | undefined {
    const info = this.#info;
    if (info === undefined || this.#game === undefined) return undefined;
    if (info.black === this.#me) return Color.BLACK;
    if (info.white === this.#me) return Color.WHITE;
    return undefined;
  }

  // --- acting ------------------------------------------------------------------------------------

  #wire(onLeave: () => void): void {
    const on = (id: string, action: () => void) => {
      const node = byId(id);
      const listener = () => action();
      node.addEventListener("click", listener);
      this.#cleanups.push(() => (node as unknown as RemovableTarget).removeEventListener("click", listener));
    };
    on("go-pass", () => void this.#act("pass", (g) => g.pass()));
    on("go-resign", () => {
      show(byId("go-resign-confirm"), true);
      byId("go-resign-yes").focus();
    });
    on("go-resign-no", () => show(byId("go-resign-confirm"), false));
    on("go-resign-yes", () => {
      show(byId("go-resign-confirm"), false);
      void this.#act("resign", (g) => g.resign());
    });
    on("go-undo", () => void this.#act("undo", (g) => g.requestUndo()));
    on("go-undo-accept", () => {
      show(byId("go-undo-offer"), false);
      void this.#act("undo", (g) => g.answerUndo({ accept: true }));
    });
    on("go-undo-refuse", () => {
      show(byId("go-undo-offer"), false);
      void this.#act("undo", (g) => g.answerUndo({ accept: false }));
    });
    on("go-accept-score", () => void this.#act("accept", (g) => g.acceptScore()));
    on("go-resume", () => void this.#act("resume", (g) => g.resume()));
    on("go-sgf-button", () => void this.#downloadSgf());
    on("go-back", () => onLeave());
    const form = byId("go-chat-form");
    const submit = (e: { preventDefault(): void }) => {
      e.preventDefault();
      const input = byId<DomControl>("go-chat-text");
      const text = input.value;
      if (text.trim() === "") return;
      const view = this.#view;
      if (view === undefined) return;
      input.value = "";
      void (async () => {
        try {
          using said = view.say({ text });
          await said;
          this.#notice("");
        } catch (err) {
          if (input.value === "") input.value = text;
          this.#failed(err);
        }
      })();
    };
    form.addEventListener("submit", submit);
    this.#cleanups.push(() => (form as unknown as RemovableTarget).removeEventListener("submit", submit));
    show(byId("go-undo-offer"), false);
    show(byId("go-resign-confirm"), false);
    show(byId("go-score"), false);
    setText(byId("go-notice"), "");
    setText(byId("go-events"), "");
    setText(byId("go-game-title"), `Game ${this.id}`);
    setText(byId("go-game-state"), "loading…");
    show(byId("go-sgf-link"), false);
    show(byId("go-chat-form"), true);
    show(byId("go-game"), true);
  }

  #picked(p: BoardPoint): void {
    const info = this.#info;
    if (info === undefined || this.#game === undefined) return;
    const name = pointName(p, info.size);
    if (info.phase === Phase.SCORING) {
      const i = p.y * info.size + p.x;
      if (this.#points[i] === 0) {
        this.#notice(`${name} is empty: click a stone to mark its group dead or alive.`);
        return;
      }
      const dead = !this.#dead.has(i);
      void this.#act(`mark ${name}`, (g) => g.markDead({ point: p, dead }));
      return;
    }
    void this.#act(name, (g) => g.move({ point: p }));
  }

  /** Runs one of the Game's moves and shows its outcome (a refusal with its reason). */
  async #act(
    what: string,
    call: (g: Game) => PromiseLike<{ readonly outcome: MoveOutcome }> & { dispose(): void },
  ) {
    const game = this.#game;
    if (game === undefined) return;
    try {
      const answer = call(game);
      let refused: string | undefined;
      let ended: string | undefined;
      try {
        const outcome = (await answer).outcome;
        if (outcome.which() === MoveOutcome_Which.ILLEGAL) refused = illegalText(outcome.illegal);
        // `ended: ""` is how the server says "done" for calls that do not end the game.
        else if (outcome.which() === MoveOutcome_Which.ENDED && outcome.ended !== "") ended = outcome.ended;
      } finally {
        answer.dispose();
      }
      if (refused !== undefined) {
        this.#notice(`Refused (${what}): ${refused}.`);
        byId("go-notice").dataset.kind = "refused";
        return;
      }
      this.#notice("");
      if (ended !== undefined && this.#info !== undefined)
        this.#note(`The game ended: ${describeResult(ended, this.#info)}.`);
      await this.#refresh();
    } catch (err) {
      this.#failed(err);
    }
  }

  async #downloadSgf(): Promise<void> {
    const view = this.#view;
    if (view === undefined) return;
    try {
      let text: string;
      {
        using answer = view.sgf();
        text = (await answer).sgf;
      }
      if (this.#sgfUrl !== undefined) URL.revokeObjectURL(this.#sgfUrl);
      this.#sgfUrl = URL.createObjectURL(new Blob([text], { type: "application/x-go-sgf" }));
      const link = byId("go-sgf-link") as DomElement & { click(): void };
      // The URL is the page's own blob: URL, never data from the server.
      link.setAttribute("href", this.#sgfUrl);
      link.setAttribute("download", `game-${this.id}.sgf`);
      setText(link, `game-${this.id}.sgf`);
      show(link, true);
      link.click();
    } catch (err) {
      this.#failed(err);
    }
  }
}

interface RemovableTarget {
  removeEventListener(type: string, listener: (event: never) => void): void;
}

function chatKey(l: ChatEntry): string {
  return `${l.at}\n${l.speaker}\n${l.text}`;
}

function scrollDown(list: DomElement): void {
  list.scrollTop = list.scrollHeight;
}

/** A result reached by counting ("B+3.5", "W+0.5", "0"), not by resignation, time or forfeit. */
function scoredResult(result: string): boolean {
  return /^[BW]\+[0-9]/.test(result) || result === "0";
}

/** "B+3.5" → "black (alice) wins by 3.5 points". */
export function describeResult(
  result: string,
  names: { readonly black: string; readonly white: string },
): string {
  if (result === "") return "not decided";
  if (result === "0") return "a draw (jigo)";
  const m = /^([BW])\+(.*)$/.exec(result);
  if (m === null) return result;
  const who = m[1] === "B" ? `black (${names.black})` : `white (${names.white})`;
  const how = m[2] ?? "";
  if (how === "R" || how === "Resign") return `${who} wins by resignation (${result})`;
  if (how === "T" || how === "Time") return `${who} wins on time (${result})`;
  if (how === "F" || how === "Forfeit") return `${who} wins by forfeit (${result})`;
  return `${who} wins by ${how} point${how === "1" ? "" : "s"} (${result})`;
}

function readClockState(c: WireClockState): ClockReading {
  return {
    mainMs: Number(c.mainMs),
    periodMs: Number(c.periodMs),
    periodsLeft: c.periodsLeft,
    stonesLeft: c.stonesLeft,
    inOvertime: c.inOvertime,
    running: c.running,
  };
}

function readClocks(black: WireClockState, white: WireClockState, paused: boolean): ClockPair {
  return {
    black: readClockState(black),
    white: readClockState(white),
    paused,
    receivedAt: systemClock.now(),
  };
}

function readScore(s: Score): ScoreView {
  const points = (list: { toArray(): Array<{ x: number; y: number }> }) =>
    list.toArray().map((p) => ({ x: p.x, y: p.y }));
  return {
    black: s.black,
    white: s.white,
    result: s.result,
    blackTerritory: points(s.blackTerritory),
    whiteTerritory: points(s.whiteTerritory),
  };
}

function territoryMap(s: ScoreView, size: number): Map<number, Territory> {
  const territory = new Map<number, Territory>();
  for (const p of s.blackTerritory) territory.set(p.y * size + p.x, "black");
  for (const p of s.whiteTerritory) territory.set(p.y * size + p.x, "white");
  return territory;
}

/** Copies what the panel needs out of an event (its message is released after the call). */
function readEvent(event: GameEvent): HeardEvent {
  switch (event.which()) {
    case GameEvent_Which.UNDO_REQUESTED:
      return { kind: "undoRequested", by: event.undoRequested };
    case GameEvent_Which.UNDO_ANSWERED:
      return { kind: "undoAnswered", accepted: event.undoAnswered };
    case GameEvent_Which.UNDONE:
      return { kind: "undone", moveCount: event.undone };
    case GameEvent_Which.SCORING:
      return { kind: "scoring", score: readScore(event.scoring) };
    case GameEvent_Which.SCORE_ACCEPTED:
      return { kind: "scoreAccepted", by: event.scoreAccepted };
    case GameEvent_Which.CHAT: {
      const l = event.chat;
      return {
        kind: "chat",
        line: { speaker: l.speaker, text: l.text, at: Number(l.at), spectator: l.spectator },
      };
    }
    case GameEvent_Which.DISCONNECTED:
      return { kind: "connection", color: event.disconnected, connected: false };
    case GameEvent_Which.RECONNECTED:
      return { kind: "connection", color: event.reconnected, connected: true };
    case GameEvent_Which.ENDED:
      return { kind: "refresh" };
    case GameEvent_Which.RESUMED:
      return { kind: "refresh", note: "Play resumed." };
    default:
      return { kind: "refresh" };
  }
}
