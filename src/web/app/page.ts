/**
 * What every page does around its own content: the connection status in the header, the sign-up /
 * log-in form, resuming on reload, the whoami panel and logging out. A page's entry point calls
 * `runPage` with its client and a `render` that fills its part once someone is logged in:
 *
 *   runPage({ start: (o) => ChatClient.start(o), render: (session) => showChat(session.client) });
 *
 * The shared markup (header, form, panel) is src/web/layout.html; a page's own markup is
 * src/web/pages/<name>.html, shown inside `#page` (see src/web/pages.ts to add a page).
 *
 * Invariants: `render` runs at most once per page load, after the session started; the password
 * field is emptied as the form is submitted, and the password is handed to the session only; when
 * the session ends (revoked, logged out) the page reloads into the login form with a notice,
 * so nothing of the old login's page state survives; when the page goes away (`pagehide`) the
 * client stops, so the next page of the tab is the only one to resume with the token.
 *
 * Tests: test/web/session.test.ts, test/web/chat.test.ts
 */
import { ErrorCode, type ParallaxError } from "../../errors.js";
import { byId, type DomControl, type DomEvent, type DomForm, dom, setText, show } from "./dom.js";
import {
  type Credentials,
  type PageClient,
  PageSession,
  type PageStatus,
  type SessionStart,
  type StartPageClient,
  sessionTokenStore,
} from "./session.js";
import { renderWhoAmI } from "./whoami-panel.js";

export interface PageSpec<C extends PageClient> {
  /** Makes the page's client (`startReconnecting`, or e.g. `(o) => ChatClient.start(o)`). */
  readonly start: StartPageClient<C>;
  /** Fills the page once logged in (once per page load). */
  readonly render: (session: PageSession<C>) => unknown;
}

const NOTICE_KEY = "parallax.notice";

/** Runs the page: resume or log in, then `render`. */
export function runPage<C extends PageClient>(spec: PageSpec<C>): void {
  const w = dom();
  const tokens = sessionTokenStore();
  const status = byId("status");
  const logout = byId<DomControl>("logout");
  const form = byId<DomForm>("login-form");
  const nameInput = byId<DomControl>("login-name");
  const passwordInput = byId<DomControl>("login-password");
  const formError = byId("login-error");
  const buttons = [byId<DomControl>("login-submit"), byId<DomControl>("signup-submit")];
  let session: PageSession<C> | undefined;
  let rendered = false;

  const showStatus = (s: PageStatus): void => {
    status.dataset.state = s.state;
    setText(status, s.text);
  };

  const showLogin = (notice: string): void => {
    showStatus({ state: "ended", text: "not logged in" });
    setText(byId("login-notice"), notice);
    show(byId("login"), true);
    show(byId("page"), false);
    show(byId("whoami"), false);
    show(logout, false);
    nameInput.focus();
  };

  const endAndReload = (notice: string): void => {
    session?.close();
    tokens.save(undefined);
    w.sessionStorage.setItem(NOTICE_KEY, notice);
    w.location.reload();
  };

  const refreshWhoAmI = async (): Promise<void> => {
    if (session === undefined) return;
    try {
      renderWhoAmI(byId("whoami-list"), byId("whoami-name"), await session.whoami());
      show(byId("whoami"), true);
    } catch (err) {
      // Reconnecting: the next "connected" refreshes it. Revoked: this login is over.
      const error = err as ParallaxError;
      if (error.code === ErrorCode.REVOKED)
        endAndReload(`Your session ended (${error.message}). Log in again.`);
    }
  };

  const ready = (s: PageSession<C>): void => {
    session = s;
    show(byId("login"), false);
    show(byId("page"), true);
    show(logout, true);
    showStatus(s.status);
    s.onStatus((st) => {
      if (st.state === "ended") endAndReload(`Your session ended: ${st.text}. Log in again.`);
      else if (st.state === "connected") void refreshWhoAmI();
    });
    void refreshWhoAmI();
    if (!rendered) {
      rendered = true;
      void Promise.resolve()
        .then(() => spec.render(s))
        .catch((err: unknown) => showStatus({ state: "ended", text: `this page failed: ${String(err)}` }));
    }
  };

  const open = (how: SessionStart): Promise<PageSession<C>> =>
    PageSession.open(spec.start, how, { tokens, onStatus: showStatus });

  /** Resumes with the kept token; retries while the server cannot be reached. */
  const resume = async (token: string, attempt: number): Promise<void> => {
    try {
      ready(await open({ resumeToken: token }));
    } catch (err) {
      const error = err as ParallaxError;
      if (error.code === ErrorCode.DISCONNECTED) {
        const delay = Math.min(8000, 500 * 2 ** attempt);
        showStatus({ state: "reconnecting", text: "reconnecting… (the server cannot be reached)" });
        setTimeout(() => void resume(token, attempt + 1), delay);
        return;
      }
      tokens.save(undefined);
      showLogin(`Your session ended (${error.message}). Log in again.`);
    }
  };

  form.addEventListener("submit", (event: DomEvent) => {
    event.preventDefault();
    const credentials: Credentials = {
      username: nameInput.value.trim(),
      password: passwordInput.value,
      signUp: event.submitter?.getAttribute("value") === "signup",
    };
    passwordInput.value = "";
    setText(formError, "");
    for (const b of buttons) b.disabled = true;
    showStatus({
      state: "connecting",
      text: credentials.signUp ? "signing up… (deriving the key)" : "logging in… (deriving the key)",
    });
    open({ credentials }).then(
      (s) => {
        for (const b of buttons) b.disabled = false;
        ready(s);
      },
      (err: unknown) => {
        for (const b of buttons) b.disabled = false;
        showStatus({ state: "ended", text: "not logged in" });
        setText(formError, loginError(err as ParallaxError));
        passwordInput.focus();
      },
    );
  });

  logout.addEventListener("click", () => {
    const s = session;
    if (s === undefined) return;
    logout.disabled = true;
    void s.logOut().finally(() => {
      w.sessionStorage.setItem(NOTICE_KEY, "You logged out.");
      w.location.reload();
    });
  });

  // Leaving the page: stop reconnecting, keep the login for the next page of this tab.
  w.addEventListener("pagehide", () => session?.close());
  // Back from the back-forward cache with a closed client: start over.
  w.addEventListener("pageshow", (event) => {
    if (event.persisted === true) w.location.reload();
  });

  const notice = w.sessionStorage.getItem(NOTICE_KEY);
  w.sessionStorage.removeItem(NOTICE_KEY);
  const token = tokens.load();
  if (token !== undefined) void resume(token, 0);
  else showLogin(notice ?? "");
}

function loginError(error: ParallaxError): string {
  switch (error.code) {
    case ErrorCode.AUTH_FAILED:
      return "Wrong name or password.";
    case ErrorCode.ALREADY_EXISTS:
      return "That name is taken: choose another, or log in.";
    case ErrorCode.DISCONNECTED:
      return "The server cannot be reached. Try again in a moment.";
    default:
      return error.message ?? String(error);
  }
}
