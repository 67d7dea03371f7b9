/**
 * The wallet page (`/wallet`): the sync status of the user's wallet (seed 000) — the sequence the
 * server holds (every device syncs to it), the encrypted size, when the last update arrived, and
 * each update as it commits from any of the user's devices — plus the devices registered with a
 * key. It attaches ("wallet", "owner") with a WalletWatcher, so the broker calls the page for
 * every committed update; after a reconnect it attaches again with a new watcher and reads the
 * state, telling apart the updates made while it was away.
 *
 * The page only watches: it never holds the wallet's keys (they come from the password, which the
 * page does not keep) and never sends an update; the server cannot read the wallet either. It
 * shows sizes and sequences, never the ciphertext.
 *
 * Invariants: the shown sequence only grows (a late answer never moves it back); one list item per
 * sequence heard; only the watcher of the current attachment changes what is shown. Every value is
 * written as text (device names included).
 *
 * Markup: src/web/pages/wallet.html (ids used here).
 *
 * Tests: test/web/wallet.test.ts
 */
import { toParallaxError } from "../../errors.js";
import type { AttachedPerspective } from "../../login/reconnecting-client.js";
import { WALLET_OWNER } from "../../services/wallet/wallet-keys.js";
import { MaybeWallet_Which, type WalletPerspective, WalletWatcher } from "../../wire/gen/wallet.js";
import { byId, type DomElement, el, setText, show } from "../app/dom.js";
import type { PageClient, PageSession } from "../app/session.js";

/** How many updates the list keeps. */
const MAX_UPDATES = 50;

export class WalletPage {
  readonly #session: PageSession<PageClient>;
  #wallet: AttachedPerspective<WalletPerspective> | undefined;
  #sequence = 0;
  #bytes: number | undefined;
  #watcher = 0;
  #reading: Promise<void> = Promise.resolve();

  private constructor(session: PageSession<PageClient>) {
    this.#session = session;
  }

  /** Shows the wallet's sync status for the session's user. */
  static async show(session: PageSession<PageClient>): Promise<WalletPage> {
    const page = new WalletPage(session);
    try {
      page.#wallet = await session.client.reconnecting.attach(WALLET_OWNER, () => page.#newWatcher());
    } catch (err) {
      page.#error(`Your wallet cannot be shown: ${toParallaxError(err).message}`);
      return page;
    }
    page.#wallet.onReattach(() => void page.#read("reconnected"));
    await page.#read("first");
    return page;
  }

  /** A watcher for one attachment: the previous attachment's watcher goes quiet. */
  #newWatcher(): WalletWatcher {
    const mine = ++this.#watcher;
    const current = () => mine === this.#watcher;
    return WalletWatcher.server({
      walletUpdated: ({ sequence }) => {
        if (current()) this.#heard(Number(sequence), "live");
      },
      notificationsDropped: ({ reason, latestSequence }) => {
        if (!current()) return;
        this.#note(`Some updates were not told one by one (${reason}).`);
        this.#heard(Number(latestSequence), "live");
      },
      revoked: ({ reason }) => {
        if (!current()) return;
        setText(byId("wallet-live"), `not following any more: ${reason}`);
        byId("wallet-live").dataset.live = "no";
      },
    });
  }

  /** Reads the state: at first, and after a reconnect (updates may have come meanwhile). */
  #read(why: "first" | "reconnected" | "refresh"): Promise<void> {
    const next = this.#reading.then(async () => {
      const wallet = this.#wallet;
      if (wallet === undefined) return;
      try {
        using answer = wallet.current.get();
        const w = (await answer).wallet;
        if (w.which() === MaybeWallet_Which.STATE) {
          const s = w.state;
          this.#bytes = s.encryptedWallet.length;
          this.#heard(
            Number(s.sequence),
            why === "first" ? "before" : why === "reconnected" ? "away" : "live",
          );
        } else {
          this.#bytes = undefined;
        }
        this.#render();
        const live = byId("wallet-live");
        live.dataset.live = "yes";
        setText(live, "following: each update shows here as it commits");
        this.#error("");
      } catch (err) {
        this.#error(`The wallet could not be read: ${toParallaxError(err).message}`);
      }
      if (why !== "refresh") await this.#devices();
    });
    this.#reading = next;
    return next;
  }

  /** `sequence` is committed; `how` says how the page learned it. */
  #heard(sequence: number, how: "before" | "away" | "live"): void {
    if (!(sequence > this.#sequence)) return;
    const first = this.#sequence;
    this.#sequence = sequence;
    const now = Date.now();
    if (how !== "before") {
      const list = byId("wallet-updates");
      const item = el(
        "li",
        { "data-sequence": String(sequence), "data-how": how },
        el("time", { datetime: new Date(now).toISOString() }, new Date(now).toLocaleTimeString()),
        " ",
        how === "away"
          ? `sequence ${sequence}: committed while this page was reconnecting${sequence - first > 1 ? ` (${sequence - first} updates)` : ""}`
          : `sequence ${sequence}: an update from one of your devices was committed`,
      );
      list.prepend(item);
      while (list.children.length > MAX_UPDATES) (list.children[MAX_UPDATES] as DomElement).remove();
      show(byId("wallet-updates-empty"), false);
      const updated = byId("wallet-updated");
      updated.dataset.at = String(now);
      setText(
        updated,
        how === "away" ? `while this page was reconnecting (read at ${clock(now)})` : clock(now),
      );
    }
    this.#render();
    // The size comes with the state: read it again after a live update.
    if (how === "live") void this.#read("refresh");
  }

  #render(): void {
    const seq = byId("wallet-sequence");
    seq.dataset.sequence = String(this.#sequence);
    setText(seq, this.#sequence === 0 ? "none yet (no device has stored a wallet)" : String(this.#sequence));
    setText(
      byId("wallet-size"),
      this.#bytes === undefined
        ? "—"
        : `${this.#bytes} bytes, encrypted by your devices (the server cannot read it)`,
    );
    const updated = byId("wallet-updated");
    if (updated.dataset.at === undefined) {
      setText(updated, this.#sequence === 0 ? "never" : "before this page opened");
    }
  }

  /** The devices registered with a key (Identity.listPublicKeys), and this page. */
  async #devices(): Promise<void> {
    const list = byId("wallet-devices");
    const here = el(
      "li",
      { "data-device": "this page" },
      "This page — follows the wallet live, holds no keys",
    );
    try {
      using answer = this.#session.identity.listPublicKeys();
      const keys = (await answer).keys
        .toArray()
        .map((k) => ({ device: k.device, addedAt: Number(k.addedAt) }));
      list.replaceChildren(
        here,
        ...keys.map((k) =>
          el(
            "li",
            { "data-device": k.device },
            el("span", { class: "device" }, k.device === "" ? "a device" : k.device),
            " ",
            el("span", { class: "meta" }, `key added ${new Date(k.addedAt).toLocaleString()}`),
          ),
        ),
      );
    } catch {
      list.replaceChildren(here);
    }
  }

  #note(text: string): void {
    const list = byId("wallet-updates");
    list.prepend(el("li", { class: "notice" }, text));
  }

  #error(text: string): void {
    setText(byId("wallet-error"), text);
  }
}

function clock(at: number): string {
  return new Date(at).toLocaleTimeString();
}
