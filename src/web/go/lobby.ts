/**
 * The Go page's lobby: a form for a new challenge (board 9, 13 or 19, komi, handicap, time
 * system, colour, an opponent by name or anyone) that also starts a game against the broker's
 * GNU Go, the user's waiting challenges (cancel), the challenges open to the user (accept), the
 * user's games (open) and watching any game by its number.
 *
 * Everything it does goes through the user's own Player perspective; the challenger of a listed
 * challenge is the name the server stamped, and everything shown is written as text.
 *
 * Invariants: a waiting challenge is listed while its `Challenge` capability is held and not
 * answered; when it is accepted the game opens (`openGame`), when it is cancelled, withdrawn or
 * cut by a dropped connection (the server withdraws a user's challenges when their last
 * attachment ends) it leaves the list with a line saying so. Lists are read again after every
 * action, on `refresh`, every 15 s while the lobby shows, and after a reconnect.
 *
 * Markup: the "go-lobby" section of src/web/pages/go.html.
 *
 * Tests: test/web/go.test.ts
 */
import { systemClock, type Timer } from "../../clock.js";
import { ErrorCode, toParallaxError } from "../../errors.js";
import {
  type Challenge,
  type ChallengeInfo,
  Color,
  type Game,
  type GameInfo,
  Phase,
  type Player,
} from "../../wire/gen/go.js";
import { byId, type DomControl, type DomElement, type DomEvent, el, setText, show } from "../app/dom.js";
import { describeResult, readGameInfo } from "./game-panel.js";
import { describeTerms, readTermsForm, TIME_FIELDS, type TermsForm } from "./terms.js";

/** The engine "Play GNU Go" asks for (Player.playEngine). */
export const ENGINE = "gnugo";

const REFRESH_MS = 15_000;

export interface LobbyOptions {
  readonly me: string;
  readonly player: () => Player;
  /** Opens a game by number, to play (false) or to watch (true). */
  readonly openGame: (id: number, spectator: boolean) => Promise<void>;
}

interface Waiting {
  readonly id: number;
  readonly row: DomElement;
  readonly challenge: Challenge;
}

export class GoLobby {
  readonly #me: string;
  readonly #player: () => Player;
  readonly #openGame: LobbyOptions["openGame"];
  readonly #waiting = new Map<number, Waiting>();
  #timer: Timer | undefined;
  #visible = true;

  constructor(options: LobbyOptions) {
    this.#me = options.me;
    this.#player = options.player;
    this.#openGame = options.openGame;
    this.#wire();
  }

  /** Shows or hides the lobby (the game section takes its place). */
  setVisible(visible: boolean): void {
    this.#visible = visible;
    show(byId("go-lobby"), visible);
    if (visible) void this.refresh();
    else {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
  }

  /** Reads the open challenges and the user's games again. */
  async refresh(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    try {
      await Promise.all([this.#readChallenges(), this.#readGames()]);
    } catch (err) {
      const e = toParallaxError(err);
      if (e.code !== ErrorCode.DISCONNECTED) this.#error(e.message);
    }
    if (this.#visible) this.#timer = systemClock.setTimer(REFRESH_MS, () => void this.refresh());
  }

  /** The connection came back: waiting challenges were withdrawn by the server; read the lists. */
  reattached(): void {
    for (const w of [...this.#waiting.values()]) this.#settle(w, "withdrawn when the connection dropped");
    if (this.#visible) void this.refresh();
  }

  // --- the form ----------------------------------------------------------------------------------

  #wire(): void {
    const form = byId("go-challenge-form");
    const time = byId<DomControl>("go-time");
    const showTimeFields = () => {
      const used = TIME_FIELDS[time.value] ?? [];
      for (const name of [
        "mainMinutes",
        "periods",
        "stones",
        "periodSeconds",
        "incrementSeconds",
        "perMoveSeconds",
      ]) {
        const row = form.querySelector(`[data-time-field="${name}"]`);
        if (row !== null) show(row, used.includes(name));
      }
    };
    time.addEventListener("change", showTimeFields);
    showTimeFields();
    form.addEventListener("submit", (event: DomEvent) => {
      event.preventDefault();
      const engine = event.submitter?.getAttribute("value") === "engine";
      const read = readTermsForm(this.#formValues());
      if (!read.ok) {
        this.#error(read.error);
        return;
      }
      this.#error("");
      const buttons = [byId<DomControl>("go-challenge-submit"), byId<DomControl>("go-engine-submit")];
      for (const b of buttons) b.disabled = true;
      const done = () => {
        for (const b of buttons) b.disabled = false;
      };
      if (engine) {
        void this.#attempt(async () => {
          let id: number;
          {
            using answer = this.#player().playEngine({ terms: read.terms, engine: ENGINE });
            id = await gameId((await answer).game);
          }
          await this.#openGame(id, false);
        }).finally(done);
        return;
      }
      void this.#attempt(async () => {
        let challenge: Challenge;
        let id: number;
        {
          using answer = this.#player().challenge({ terms: read.terms });
          const got = await answer;
          challenge = got.challenge;
          id = Number(got.id);
        }
        this.#wait(id, challenge, read.terms.opponent ?? "");
        await this.refresh();
      }).finally(done);
    });
    byId("go-refresh").addEventListener("click", () => void this.refresh());
    byId("go-watch-form").addEventListener("submit", (event: DomEvent) => {
      event.preventDefault();
      const input = byId<DomControl>("go-watch-id");
      const text = input.value.trim();
      if (!/^[0-9]{1,15}$/.test(text)) {
        this.#error("Watch: a game's number, e.g. 12");
        return;
      }
      void this.#attempt(() => this.#openGame(Number(text), true));
    });
  }

  #formValues(): TermsForm {
    const v = (id: string) => byId<DomControl>(id).value;
    return {
      size: v("go-size"),
      komi: v("go-komi"),
      handicap: v("go-handicap"),
      time: v("go-time"),
      mainMinutes: v("go-main"),
      periods: v("go-periods"),
      stones: v("go-stones"),
      periodSeconds: v("go-period"),
      incrementSeconds: v("go-increment"),
      perMoveSeconds: v("go-per-move"),
      color: v("go-color"),
      opponent: v("go-opponent"),
      ranked: (byId("go-ranked") as DomControl & { checked: boolean }).checked ? "on" : "",
    };
  }

  async #attempt(job: () => Promise<unknown>): Promise<void> {
    this.#error("");
    try {
      await job();
    } catch (err) {
      const e = toParallaxError(err);
      this.#error(
        e.code === ErrorCode.DISCONNECTED
          ? "Not connected right now: try again once the page has reconnected."
          : e.message,
      );
    }
  }

  #error(text: string): void {
    setText(byId("go-lobby-error"), text);
  }

  // --- waiting challenges ------------------------------------------------------------------------

  #wait(id: number, challenge: Challenge, opponent: string): void {
    const cancel = el("button", { type: "button", "data-challenge": String(id) }, "Cancel");
    const row = el(
      "li",
      { "data-challenge": String(id) },
      el("span", {}, `Challenge ${id}`),
      " ",
      el("span", { class: "meta" }, opponent === "" ? "open to anyone" : `for ${opponent}`),
      " — waiting for an opponent ",
      cancel,
    );
    const w: Waiting = { id, row, challenge };
    this.#waiting.set(id, w);
    byId("go-my-challenges").append(row);
    show(byId("go-my-empty"), false);
    cancel.addEventListener("click", () => {
      void this.#attempt(async () => {
        using done = challenge.cancel();
        await done;
        this.#settle(w, "cancelled");
        await this.refresh();
      });
    });
    void (async () => {
      let game: Game;
      try {
        using answer = challenge.accepted();
        game = (await answer).game;
      } catch (err) {
        if (this.#waiting.get(id) === w) this.#settle(w, `ended: ${toParallaxError(err).message}`);
        return;
      }
      this.#settle(w, undefined);
      try {
        const gid = await gameId(game);
        await this.#openGame(gid, false);
      } catch (err) {
        this.#error(toParallaxError(err).message);
      }
    })();
  }

  /** The challenge is over: accepted (`why` undefined), cancelled or withdrawn. */
  #settle(w: Waiting, why: string | undefined): void {
    if (this.#waiting.get(w.id) !== w) return;
    this.#waiting.delete(w.id);
    w.challenge.dispose();
    w.row.remove();
    show(byId("go-my-empty"), this.#waiting.size === 0);
    if (why !== undefined) setText(byId("go-my-note"), `Challenge ${w.id} ${why}.`);
  }

  // --- the lists ---------------------------------------------------------------------------------

  async #readChallenges(): Promise<void> {
    let open: Array<{ id: number; challenger: string; terms: string; opponent: string }>;
    {
      using answer = this.#player().openChallenges();
      open = (await answer).challenges.toArray().map((c: ChallengeInfo) => ({
        id: Number(c.id),
        challenger: c.challenger,
        opponent: c.terms.opponent,
        terms: describeTerms({
          rules: c.terms.rules,
          time: c.terms.time,
          ranked: c.terms.ranked,
          color: c.terms.color,
        }),
      }));
    }
    const list = byId("go-open-challenges");
    list.replaceChildren(
      ...open.map((c) => {
        const mine = c.challenger === this.#me;
        const accept = mine
          ? null
          : el("button", { type: "button", "data-challenge": String(c.id) }, "Accept");
        accept?.addEventListener("click", () => {
          void this.#attempt(async () => {
            let id: number;
            {
              using answer = this.#player().accept({ id: BigInt(c.id) });
              id = await gameId((await answer).game);
            }
            await this.#openGame(id, false);
          });
        });
        return el(
          "li",
          { "data-challenge": String(c.id) },
          el("span", { class: "challenger" }, c.challenger),
          mine ? " (you)" : "",
          c.opponent === "" ? "" : ` → ${c.opponent}`,
          ": ",
          el("span", { class: "meta" }, c.terms),
          " ",
          accept,
        );
      }),
    );
    show(byId("go-open-empty"), open.length === 0);
  }

  async #readGames(): Promise<void> {
    let games: ReturnType<typeof readGameInfo>[];
    {
      using answer = this.#player().games({ includeFinished: true });
      games = (await answer).games.toArray().map((g: GameInfo) => readGameInfo(g));
    }
    const list = byId("go-games");
    list.replaceChildren(
      ...games.map((g) => {
        const open = el("button", { type: "button", "data-game": String(g.id) }, "Open");
        open.addEventListener("click", () => void this.#attempt(() => this.#openGame(g.id, false)));
        const state =
          g.phase === Phase.FINISHED
            ? describeResult(g.result, g)
            : g.phase === Phase.SCORING
              ? "scoring"
              : `move ${g.moveCount + 1}, ${g.toMove === Color.BLACK ? g.black : g.white} to play`;
        return el(
          "li",
          { "data-game": String(g.id) },
          `Game ${g.id}: `,
          el("span", {}, `${g.black} (black) vs ${g.white} (white)`),
          ", ",
          el("span", { class: "meta" }, `${g.size}×${g.size}, ${state}`),
          " ",
          open,
        );
      }),
    );
    show(byId("go-games-empty"), games.length === 0);
  }
}

/** The number of the game `game` holds (the stub is disposed: the page opens games by number). */
async function gameId(game: Game): Promise<number> {
  try {
    using answer = game.info();
    return Number((await answer).info.id);
  } finally {
    game.dispose();
  }
}
