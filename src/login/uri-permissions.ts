/**
 * URIs, URI patterns and permission rules (seed 003's WAMP URIs and Nexus' `perms` letters), in
 * the login layer because both the router's roles and API keys' URI limits are written in them.
 *
 * A URI is dot-separated components: 1..255 characters, no whitespace, no '#', no control or
 * invisible character (Unicode Cc, Cf — zero-width, soft hyphen, bidirectional controls — and
 * lone surrogates), no empty component. Letters of every script stay allowed; what is refused
 * are characters that make a URI look like another one (an exact deny rule on "admin.reset"
 * has no twin "admin.reset\u200b" for a prefix registration on "admin" to receive). A pattern is a URI and a match policy:
 * - `exact`: that URI;
 * - `prefix`: that URI and every URI below it, component-wise ("a.b" matches "a.b.c", not "a.bc");
 *   the empty pattern with prefix matches every URI;
 * - `wildcard`: same number of components, an empty component matching any one ("a..c").
 *
 * Invariants:
 * - Where several rules match a URI, the most specific decides alone: an exact rule, else the
 *   longest prefix rule (Crossbar's documented precedence for pattern-based registrations), else
 *   the wildcard rule WAMP's advanced profile prefers: the runs of fixed components, compared
 *   left to right, the longer run winning at the first difference ("a.b.." over "a..c.d",
 *   "a1.b2.c3..e5" over "a1.b2..d4.e5"); among equals the first listed. Crossbar leaves
 *   wildcard ties unspecified.
 *   A URI no rule matches allows nothing.
 * - `allowsPattern` on a pattern that matches one URI only (exact, or a wildcard without an
 *   empty component) decides as `allows` does on that URI.
 * - `allows(rules, uri, action)` and `mostSpecific` never throw on a well-formed URI; malformed
 *   URIs, patterns, match names and permission letters are refused by `readUri`/`readPattern`/
 *   `ruleFromLetters` with PARALLAX_ERR_BAD_ARGUMENT naming the fault.
 *
 * Tests: test/login/uri-permissions.test.ts
 */
import { ErrorCode, ParallaxError } from "../errors.js";

export type UriMatchName = "exact" | "prefix" | "wildcard";
export type UriAction = "call" | "register" | "publish" | "subscribe";

export const URI_MATCHES: readonly UriMatchName[] = ["exact", "prefix", "wildcard"];
export const URI_ACTIONS: readonly UriAction[] = ["call", "register", "publish", "subscribe"];

/** Longest URI, in characters. */
export const MAX_URI_CHARS = 255;

export interface UriPattern {
  readonly uri: string;
  readonly match: UriMatchName;
}

/** A rule: what may be done on the URIs a pattern matches. */
export interface UriRule extends UriPattern {
  readonly call: boolean;
  readonly register: boolean;
  readonly publish: boolean;
  readonly subscribe: boolean;
}

const BAD_CHAR = /[\s#]/u;
const INVISIBLE_CHAR = /[\p{Cc}\p{Cf}\p{Cs}]/u;

/** A URI a call names, checked: PARALLAX_ERR_BAD_ARGUMENT if malformed. `what` names it in the error. */
export function readUri(uri: string, what = "URI"): string {
  checkChars(uri, what);
  if (uri.length === 0) throw bad(`${what} is empty`);
  if (uri.split(".").some((c) => c.length === 0)) {
    throw bad(`${what} "${uri}" has an empty component`);
  }
  return uri;
}

/** A pattern, checked: wildcards may have empty components; a prefix may be "" (everything). */
export function readPattern(uri: string, match: UriMatchName, what = "URI pattern"): UriPattern {
  if (!URI_MATCHES.includes(match)) {
    throw bad(`${what}'s match must be exact, prefix or wildcard; got ${JSON.stringify(String(match))}`);
  }
  checkChars(uri, what);
  if (match === "exact") readUri(uri, what);
  else if (match === "prefix" && uri !== "") readUri(uri, what);
  else if (match === "wildcard" && uri.length === 0) throw bad(`${what} is empty`);
  return { uri, match };
}

function checkChars(uri: string, what: string): void {
  if (typeof uri !== "string") throw bad(`${what} must be text`);
  if (uri.length > MAX_URI_CHARS) throw bad(`${what} is longer than ${MAX_URI_CHARS} characters`);
  if (BAD_CHAR.test(uri)) throw bad(`${what} "${uri}" contains whitespace or '#'`);
  if (INVISIBLE_CHAR.test(uri)) {
    throw bad(`${what} ${JSON.stringify(uri)} contains control or invisible characters`);
  }
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}

/** Whether `pattern` matches the (well-formed) `uri`. */
export function matches(pattern: UriPattern, uri: string): boolean {
  switch (pattern.match) {
    case "exact":
      return pattern.uri === uri;
    case "prefix":
      return (
        pattern.uri === "" ||
        uri === pattern.uri ||
        (uri.startsWith(pattern.uri) && uri.charCodeAt(pattern.uri.length) === 0x2e)
      );
    case "wildcard": {
      const want = pattern.uri.split(".");
      const have = uri.split(".");
      if (want.length !== have.length) return false;
      return want.every((c, i) => c === "" || c === have[i]);
    }
  }
}

/**
 * Orders matching patterns, most specific first: exact; then prefix, longer first; then wildcard,
 * by WAMP's runs of fixed components (longer first run first, then the next). Negative: `a` first.
 */
export function compareSpecificity(a: UriPattern, b: UriPattern): number {
  const rank = (p: UriPattern) => (p.match === "exact" ? 0 : p.match === "prefix" ? 1 : 2);
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  if (a.match === "prefix") return b.uri.length - a.uri.length;
  if (a.match === "wildcard") {
    const ra = fixedRuns(a.uri);
    const rb = fixedRuns(b.uri);
    for (let i = 0; i < Math.max(ra.length, rb.length); i++) {
      const d = (rb[i] ?? 0) - (ra[i] ?? 0);
      if (d !== 0) return d;
    }
  }
  return 0;
}

/** The lengths of the runs of fixed components, each run ended by a wildcard (or the end). */
function fixedRuns(uri: string): number[] {
  const runs = [0];
  for (const c of uri.split(".")) {
    if (c === "") runs.push(0);
    else runs[runs.length - 1] = (runs.at(-1) ?? 0) + 1;
  }
  return runs;
}

/** The most specific of `items` whose pattern matches `uri` (the first listed among equals). */
export function mostSpecific<T extends UriPattern>(items: Iterable<T>, uri: string): T | undefined {
  let best: T | undefined;
  for (const item of items) {
    if (!matches(item, uri)) continue;
    if (best === undefined || compareSpecificity(item, best) < 0) best = item;
  }
  return best;
}

/** Whether the most specific rule matching `uri` allows `action`. */
export function allows(rules: readonly UriRule[], uri: string, action: UriAction): boolean {
  return mostSpecific(rules, uri)?.[action] ?? false;
}

/**
 * For a subscription or registration on a *pattern*, whether `rules` allow `action` on the
 * pattern as a whole: the most specific rule covering every URI the pattern matches decides
 * (an exact pattern: `allows`). Rules more specific than the pattern may still deny some of the
 * URIs it matches, so whoever delivers an event or routes a call on such a pattern also checks
 * `allows` for the concrete URI.
 */
export function allowsPattern(rules: readonly UriRule[], pattern: UriPattern, action: UriAction): boolean {
  if (pattern.match === "exact" || (pattern.match === "wildcard" && !pattern.uri.split(".").includes(""))) {
    // One URI only: the rules that cover the pattern are those that match that URI.
    return allows(rules, pattern.uri, action);
  }
  let best: UriRule | undefined;
  for (const r of rules) {
    if (!covers(r, pattern)) continue;
    if (best === undefined || compareSpecificity(r, best) < 0) best = r;
  }
  return best?.[action] ?? false;
}

/** Whether every URI the pattern `p` matches is matched by rule `r`. */
function covers(r: UriPattern, p: UriPattern): boolean {
  const fixed = p.uri === "" ? [] : p.uri.split(".");
  if (r.match === "prefix") {
    if (r.uri === "") return true;
    const rp = r.uri.split(".");
    if (p.match === "prefix") return rp.length <= fixed.length && rp.every((c, i) => fixed[i] === c);
    // A wildcard: the rule's components must be fixed ones at the start of the pattern.
    return rp.length <= fixed.length && rp.every((c, i) => fixed[i] === c && c !== "");
  }
  if (r.match === "wildcard" && p.match === "wildcard") {
    const b = r.uri.split(".");
    return fixed.length === b.length && b.every((c, i) => c === "" || c === fixed[i]);
  }
  return false;
}

/** Rule letters as Nexus writes them: c(all), r(egister), p(ublish), s(ubscribe). */
export function permsLetters(rule: UriRule): string {
  return `${rule.call ? "c" : ""}${rule.register ? "r" : ""}${rule.publish ? "p" : ""}${rule.subscribe ? "s" : ""}`;
}

/** A rule from a pattern and Nexus' letters ("crps"); unknown letters are refused. */
export function ruleFromLetters(uri: string, match: UriMatchName, letters: string): UriRule {
  const pattern = readPattern(uri, match);
  if (typeof letters !== "string") throw bad("permission letters must be text");
  for (const ch of letters) {
    if (!"crps".includes(ch)) throw bad(`permission letters are c, r, p and s; got "${letters}"`);
  }
  return {
    ...pattern,
    call: letters.includes("c"),
    register: letters.includes("r"),
    publish: letters.includes("p"),
    subscribe: letters.includes("s"),
  };
}
