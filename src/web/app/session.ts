/**
 * A page's login session: it connects to `/rpc` on the page's own origin, signs up or logs in
 * with a password (SCRAM; argon2id in WebAssembly, `WasmKdf`; a new verifier uses the server's
 * `Root.info().kdfDefault`), or resumes with the token an earlier page of this tab kept, and
 * then rides out dropped connections through a ReconnectingClient, telling the page its status
 * ("connecting", "connected", "reconnecting", "ended") as it changes.
 *
 * One client per page: `StartPageClient` makes it from the options this module builds. A page
 * that needs only perspectives uses `startReconnecting` (a plain ReconnectingClient: attach
 * through `session.client.reconnecting.attach(KEY)`); the chat page passes
 * `(o) => ChatClient.start(o)`; a page for another service that has its own self-healing client
 * passes that client's start the same way, as long as it exposes its `reconnecting` and `close`.
 *
 * Invariants:
 * - The only thing kept is the newest resume token, in `sessionStorage` (this tab, this origin):
 *   written each time the client's token changes (issued at login, rotated by every resume),
 *   removed when the session ends or logs out. Neither the password nor the SaltedPassword is
 *   stored: the password is read from the form once, handed to the first login and dropped (a
 *   reconnect resumes, it never logs in again); the SaltedPassword is zeroed after the proof.
 * - The password never leaves the page: sign-up sends a verifier, login a SCRAM proof.
 * - `close()` (the page is going away) stops the client without ending the login, so the next
 *   page of the tab resumes with the token; a client left running while the next page resumes
 *   would present the same token twice, and the server ends the whole session when it sees that.
 *   Two tabs holding one token (a duplicated tab) end it the same way: log in again.
 *
 * Tests: test/web/session.test.ts (in Chromium)
 */
import { ErrorCode, ParallaxError, toParallaxError } from "../../errors.js";
import { loginWithPassword, signUp } from "../../login/browser-login.js";
import { ReconnectingClient } from "../../login/reconnecting-client.js";
import { RpcConnection } from "../../rpc/index.js";
import { connectBrowserWebSocket } from "../../transport/browser-websocket.js";
import { AuthMethod, type Identity, type Root } from "../../wire/gen/broker.js";
import { type DomStorage, dom } from "./dom.js";

/** What the page shows about its connection. */
export type PageStatus =
  | { readonly state: "connecting"; readonly text: string }
  | { readonly state: "connected"; readonly text: string }
  | { readonly state: "reconnecting"; readonly text: string }
  /** A sign-up waits for an operator's approval. */
  | { readonly state: "waiting"; readonly text: string }
  /** The login ended (revoked, logged out elsewhere, token refused): log in again. */
  | { readonly state: "ended"; readonly text: string };

/** An event of the page's client: ReconnectEvent, or a superset of it such as ChatClientEvent. */
export interface ClientEvent {
  readonly type: string;
  readonly error?: ParallaxError;
}

/** What a page's client is made from (ReconnectingClientOptions and ChatClientOptions both take it). */
export interface PageClientOptions {
  readonly connect: () => Promise<RpcConnection>;
  readonly login: (root: Root) => Promise<Identity>;
  readonly resumeToken?: string;
  readonly onToken: (token: string | undefined) => void;
  readonly onEvent: (event: ClientEvent) => void;
  readonly device: string;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** A page's self-healing client: a ReconnectingClient, or one built on it (ChatClient). */
export interface PageClient {
  readonly reconnecting: ReconnectingClient;
  close(): void;
}

export type StartPageClient<C extends PageClient> = (options: PageClientOptions) => Promise<C>;

/** A plain ReconnectingClient: for pages that attach perspectives themselves. */
export const startReconnecting: StartPageClient<PageClient> = async (options) => {
  const reconnecting = new ReconnectingClient(options);
  await reconnecting.start();
  return { reconnecting, close: () => reconnecting.close() };
};

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** Sign up (a new account) instead of logging in. */
  readonly signUp: boolean;
}

/** How a session starts: a kept token, or what the user typed. */
export type SessionStart = { readonly resumeToken: string } | { readonly credentials: Credentials };

/** Where the resume token lives between the pages of one tab. */
export interface TokenStore {
  load(): string | undefined;
  save(token: string | undefined): void;
}

const TOKEN_KEY = "parallax.resumeToken";

/** The tab's `sessionStorage` (gone with the tab; other tabs and origins do not see it). */
export function sessionTokenStore(storage: DomStorage = dom().sessionStorage): TokenStore {
  return {
    load: () => storage.getItem(TOKEN_KEY) ?? undefined,
    save: (token) =>
      token === undefined ? storage.removeItem(TOKEN_KEY) : storage.setItem(TOKEN_KEY, token),
  };
}

/** `ws(s)://<this page's host>/rpc`. */
export function pageRpcUrl(): string {
  const { protocol, host } = dom().location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/rpc`;
}

export interface SessionOptions {
  /** Default: `pageRpcUrl()`. */
  readonly url?: string;
  /** Default: `sessionTokenStore()`. */
  readonly tokens?: TokenStore;
  /** Told every status, from the first. */
  readonly onStatus?: (status: PageStatus) => void;
  /** Names this page on its resume tokens. Default "web page". */
  readonly device?: string;
}

/** The whoami panel's content. */
export interface WhoAmIView {
  readonly name: string;
  /** The router's role for this user; undefined when the keyring has no router session. */
  readonly role: string | undefined;
  /** How this login was made: "password", "sign-up", "resume token", … */
  readonly method: string;
  /** The credential of this login, as the server describes it. */
  readonly grant: string;
  /** What this login may attach, as "service/perspective". */
  readonly keyring: readonly string[];
  /** What this connection holds right now, and through which grant. */
  readonly holds: ReadonlyArray<{ readonly perspective: string; readonly grant: string }>;
  readonly admin: boolean;
}

const METHOD_LABELS: Record<number, string> = {
  [AuthMethod.PASSWORD]: "password",
  [AuthMethod.PUBLIC_KEY]: "public key",
  [AuthMethod.API_KEY]: "API key",
  [AuthMethod.OTP]: "one-time password",
  [AuthMethod.RESUME]: "resume token",
  [AuthMethod.ANONYMOUS]: "anonymous",
  [AuthMethod.SIGN_UP]: "sign-up",
};

/** Shortest password sign-up accepts (the server never sees it, so only the page can ask). */
export const MIN_PASSWORD_CHARS = 8;

export class PageSession<C extends PageClient> {
  #client: C | undefined;
  #status: PageStatus = { state: "connecting", text: "connecting…" };
  readonly #tokens: TokenStore;
  readonly #listeners = new Set<(status: PageStatus) => void>();
  readonly #clientListeners = new Set<(event: ClientEvent) => void>();

  private constructor(options: SessionOptions) {
    this.#tokens = options.tokens ?? sessionTokenStore();
    if (options.onStatus !== undefined) this.#listeners.add(options.onStatus);
  }

  /**
   * Starts the page's client: resumes with a kept token, or signs up / logs in with what the user
   * typed. Fails as the login does (PARALLAX_ERR_AUTH_FAILED: wrong name or password, or a token
   * that no longer works; PARALLAX_ERR_DISCONNECTED: the server cannot be reached).
   */
  static async open<C extends PageClient>(
    start: StartPageClient<C>,
    how: SessionStart,
    options: SessionOptions = {},
  ): Promise<PageSession<C>> {
    const session = new PageSession<C>(options);
    const url = options.url ?? pageRpcUrl();
    let credentials = "credentials" in how ? how.credentials : undefined;
    if (credentials?.signUp === true && credentials.password.length < MIN_PASSWORD_CHARS) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `choose a password of at least ${MIN_PASSWORD_CHARS} characters`,
      );
    }
    session.#tell({ state: "connecting", text: "connecting…" });
    try {
      session.#client = await start({
        connect: async () => new RpcConnection(await connectBrowserWebSocket(url)),
        login: (root) => {
          // Used once: later logins of this client are resumes.
          const c = credentials;
          credentials = undefined;
          if (c === undefined) {
            throw new ParallaxError(ErrorCode.AUTH_FAILED, "this page keeps no password: log in again");
          }
          return c.signUp ? signUpOn(root, c, session) : logInOn(root, c);
        },
        resumeToken: "resumeToken" in how ? how.resumeToken : undefined,
        onToken: (token) => session.#tokens.save(token),
        onEvent: (event) => session.#event(event),
        device: options.device ?? "web page",
        baseDelayMs: 250,
        maxDelayMs: 4000,
      });
    } catch (err) {
      credentials = undefined;
      throw toParallaxError(err);
    }
    return session;
  }

  /** The page's client (ChatClient on the chat page). */
  get client(): C {
    if (this.#client === undefined) throw new ParallaxError(ErrorCode.FAILED, "the session has not started");
    return this.#client;
  }

  /** The Identity of the live connection; throws PARALLAX_ERR_DISCONNECTED while reconnecting. */
  get identity(): Identity {
    return this.client.reconnecting.identity;
  }

  get status(): PageStatus {
    return this.#status;
  }

  /** Calls `listener` with each status from now on; answers its removal. */
  onStatus(listener: (status: PageStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` with each event the client tells (e.g. ChatClient's "restored"); answers its removal. */
  onClientEvent(listener: (event: ClientEvent) => void): () => void {
    this.#clientListeners.add(listener);
    return () => this.#clientListeners.delete(listener);
  }

  /** Who this login is, from the broker's and the router's whoami. */
  async whoami(): Promise<WhoAmIView> {
    const identity = this.identity;
    const call = identity.whoami();
    let view: Omit<WhoAmIView, "role">;
    try {
      const info = (await call).info;
      view = {
        name: info.name,
        method: METHOD_LABELS[info.authMethod] ?? `method ${info.authMethod}`,
        grant: info.grant,
        keyring: info.keyring.toArray().map((k) => `${k.service}/${k.perspective}`),
        holds: info.attached
          .toArray()
          .map((a) => ({ perspective: `${a.service}/${a.perspective}`, grant: a.grant })),
        admin: info.admin,
      };
    } finally {
      call.dispose();
    }
    const routerPair = "router/session";
    // The router's schema is a sizeable part of the bundle: loaded when first asked.
    const role = view.keyring.includes(routerPair)
      ? await (await import("./router-role.js")).routerRole(identity)
      : undefined;
    return { ...view, role };
  }

  /** Ends this login (its tokens stop working) and forgets the token. */
  async logOut(): Promise<void> {
    try {
      using done = this.identity.logout();
      await done;
    } finally {
      this.#tokens.save(undefined);
      this.close();
    }
  }

  /** Stops the client; the login and the kept token stay (the next page of the tab resumes). */
  close(): void {
    this.#client?.close();
  }

  #event(event: ClientEvent): void {
    for (const l of this.#clientListeners) {
      try {
        l(event);
      } catch {
        // a listener's failure is not the session's
      }
    }
    switch (event.type) {
      case "connected":
        this.#tell({ state: "connected", text: "connected" });
        break;
      case "disconnected":
      case "retrying":
        this.#tell({ state: "reconnecting", text: "reconnecting…" });
        break;
      case "failed":
        this.#tokens.save(undefined);
        this.#tell({ state: "ended", text: `signed out: ${event.error?.message ?? "the session ended"}` });
        break;
    }
  }

  /** @internal */
  tell(status: PageStatus): void {
    this.#tell(status);
  }

  #tell(status: PageStatus): void {
    this.#status = status;
    for (const l of this.#listeners) {
      try {
        l(status);
      } catch {
        // a listener's failure is not the session's
      }
    }
  }
}

async function logInOn(root: Root, c: Credentials): Promise<Identity> {
  const login = await loginWithPassword(root, c.username, c.password);
  login.saltedPassword.fill(0);
  return login.identity;
}

async function signUpOn(root: Root, c: Credentials, session: PageSession<PageClient>): Promise<Identity> {
  let params: { algorithm: "argon2id"; memoryKiB: number; iterations: number; parallelism: number };
  {
    using answer = root.info();
    const k = (await answer).info.kdfDefault;
    params = {
      algorithm: k.algorithm as "argon2id",
      memoryKiB: k.memoryKiB,
      iterations: k.iterations,
      parallelism: k.parallelism,
    };
  }
  // signUp checks the parameters against the floor and ceiling before deriving anything.
  const outcome = await signUp(root, c.username, c.password, { params });
  if (outcome.identity !== undefined) return outcome.identity;
  const pending = outcome.pending;
  session.tell({ state: "waiting", text: "waiting for an operator to approve the sign-up…" });
  try {
    using approved = pending.wait();
    return (await approved).identity;
  } finally {
    pending.dispose();
  }
}
