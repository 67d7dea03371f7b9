/**
 * The page's game listeners, one per game and role (playing or watching) per attachment of the
 * Go perspective. The server keeps a listener until the attachment ends and allows 4 per
 * attachment and game, so a panel that closes does not stop its listener: it detaches its sink,
 * and a panel opened on the same game later attaches its own to the same listener instead of
 * listening again. A reconnect makes a new attachment (a new Player): the next `follow` listens
 * anew, and events still reaching a listener that is no longer the current one are refused,
 * which makes the server drop it.
 *
 * Invariants: at most one listener per key is current; events go to the current sink only (none
 * while no panel shows the game); a sink is told the events of its own listener, in order.
 *
 * Tests: test/web/go.test.ts ("opens the same game again and again")
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import { type GameEvent, GameListener, type GameView, type Player } from "../../wire/gen/go.js";

export type GameSink = (event: GameEvent) => void;

interface Following {
  readonly player: Player;
  sink: GameSink | undefined;
}

export class GameFollowers {
  readonly #byKey = new Map<string, Following>();

  /**
   * Sends the events of game `key` (e.g. "play:12", "watch:12") to `sink`, listening through
   * `view` unless this attachment (`player`) listens to that game already.
   */
  async follow(key: string, player: Player, view: GameView, sink: GameSink): Promise<void> {
    const known = this.#byKey.get(key);
    if (known !== undefined && known.player === player) {
      known.sink = sink;
      return;
    }
    const entry: Following = { player, sink };
    this.#byKey.set(key, entry);
    const listener = GameListener.server({
      event: ({ event }) => {
        if (this.#byKey.get(key) !== entry) {
          throw new ParallaxError(ErrorCode.FAILED, "this page follows the game through a newer listener");
        }
        entry.sink?.(event);
      },
    });
    try {
      using listening = view.listen({ listener });
      await listening;
    } catch (err) {
      if (this.#byKey.get(key) === entry) this.#byKey.delete(key);
      throw err;
    } finally {
      // The server holds its own reference until the attachment ends.
      listener.dispose();
    }
  }

  /** `sink` hears nothing more (the listener stays, for the next panel on this game). */
  unfollow(key: string, sink: GameSink): void {
    const known = this.#byKey.get(key);
    if (known?.sink === sink) known.sink = undefined;
  }
}
