/**
 * The Go page (`/go`): the lobby (src/web/go/lobby.ts) and one game at a time, played or watched
 * (src/web/go/game-panel.ts), over the user's ("go", "player") perspective, which the page's
 * ReconnectingClient keeps attached across dropped connections.
 *
 * Invariants: at most one GamePanel is open (opening another closes the first; the game's
 * listener stays with GameFollowers for the next panel on it); after a reconnect the Player is a new capability, and the lobby and the open panel
 * are told (`onReattach`) so that they read everything again through it — nothing of the old
 * connection's capabilities is used again.
 *
 * Markup: src/web/pages/go.html. Tests: test/web/go.test.ts
 */
import { toParallaxError } from "../../errors.js";
import { GO_PLAYER } from "../../services/go/go-keys.js";
import type { Player } from "../../wire/gen/go.js";
import { byId, setText } from "../app/dom.js";
import type { PageClient, PageSession } from "../app/session.js";
import { GameFollowers } from "./game-followers.js";
import { GamePanel } from "./game-panel.js";
import { GoLobby } from "./lobby.js";

export class GoPage {
  #panel: GamePanel | undefined;
  #opening = 0;
  readonly #followers = new GameFollowers();

  private constructor(
    private readonly me: string,
    private readonly lobby: GoLobby,
  ) {}

  /** Shows the Go page for the session's user. */
  static async show(session: PageSession<PageClient>): Promise<GoPage> {
    const me = (await session.whoami()).name;
    const handle = await session.client.reconnecting.attach(GO_PLAYER);
    const player = () => handle.current;
    let page: GoPage | undefined;
    const lobby = new GoLobby({
      me,
      player,
      openGame: (id, spectator) => (page as GoPage).#open(id, spectator, player),
    });
    page = new GoPage(me, lobby);
    handle.onReattach(() => {
      lobby.reattached();
      void page.#panel?.reattach();
    });
    lobby.setVisible(true);
    return page;
  }

  async #open(id: number, spectator: boolean, player: () => Player): Promise<void> {
    const attempt = ++this.#opening;
    this.#panel?.close();
    this.#panel = undefined;
    this.lobby.setVisible(false);
    try {
      const panel = await GamePanel.open({
        id,
        me: this.me,
        spectator,
        player,
        followers: this.#followers,
        onLeave: () => this.#leave(),
      });
      if (attempt !== this.#opening) {
        panel.close();
        return;
      }
      this.#panel = panel;
      byId("go-board").querySelector("button")?.focus();
    } catch (err) {
      if (attempt !== this.#opening) return;
      this.lobby.setVisible(true);
      setText(byId("go-lobby-error"), `Game ${id}: ${toParallaxError(err).message}`);
    }
  }

  #leave(): void {
    this.#opening++;
    this.#panel?.close();
    this.#panel = undefined;
    this.lobby.setVisible(true);
  }
}
