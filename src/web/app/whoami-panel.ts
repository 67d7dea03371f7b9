/**
 * The whoami panel every page shows once logged in: name, role, how this login was made, what
 * it may attach and what this connection holds. Every value is the server's, written as text.
 *
 * Tests: test/web/session.test.ts
 */
import { type DomElement, el, setText } from "./dom.js";
import type { WhoAmIView } from "./session.js";

/** Fills the panel (`list` is its `<dl>`; `badge` shows the name in the header). */
export function renderWhoAmI(list: DomElement, badge: DomElement, who: WhoAmIView): void {
  const row = (term: string, ...values: Array<DomElement | string>) => [
    el("dt", {}, term),
    el("dd", { "data-field": term.toLowerCase() }, ...values),
  ];
  const items = (entries: readonly string[]) =>
    entries.length === 0 ? "nothing" : el("ul", {}, ...entries.map((e) => el("li", {}, e)));
  list.replaceChildren(
    ...row("Name", who.name),
    ...row("Role", who.role ?? "none (no router session on the keyring)"),
    ...row("Login", loginLine(who)),
    ...row("Keyring", items(who.keyring)),
    ...row("Holds", items(who.holds.map((h) => `${h.perspective} (through ${h.grant})`))),
    ...row("Admin", who.admin ? "yes" : "no"),
  );
  setText(badge, who.name);
}

/** "password", "resume token (web page)", "API key: api key 3 (ci)": the method, and the grant when it says more. */
function loginLine(who: WhoAmIView): string {
  const grant = who.grant.trim();
  if (grant === "" || grant.toLowerCase() === who.method) return who.method;
  return grant.toLowerCase().startsWith(who.method) ? grant : `${who.method}: ${grant}`;
}
