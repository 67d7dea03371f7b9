/**
 * URIs, URI patterns and permission rules (src/login/uri-permissions.ts): the precise refusals of
 * malformed URIs, patterns and letters; component-wise matching; the precedence among matching
 * rules; `allows` and `allowsPattern`; Nexus' permission letters. Property tests (fast-check) over
 * a three-letter alphabet, so that random rules and URIs overlap often.
 *
 * Where the precedence comes from (looked up with the `search` tool):
 * - Crossbar's "Pattern-Based Registrations" page (crossbar.io/docs/Pattern-Based-Registrations/,
 *   found in the pages corpus; read whole at crossbario/crossbar
 *   docs/pages/programming-guide/rpc/Pattern-Based-Registrations.rst), section "Conflict
 *   resolution": the policies rank exact, then prefix, then wildcard, a lower one applying only
 *   when no higher one matches; among prefix matches the longest prefix wins; and a conflict
 *   resolution among wildcard matches "has yet to be specified and implemented". Crossbar's
 *   router code agrees (crossbar/router/observation.py, `best_matching_observation`: exact, then
 *   the longest prefix, then the first wildcard found, with a FIXME for "most selective").
 * - So the wildcard order is WAMP's, the published rule: its advanced profile
 *   (wamp-proto/wamp-proto rfc/text/advanced/ap_rpc_pattern_based_registration.md, "Calls
 *   matching multiple registrations") orders wildcards by the length of the run of fixed
 *   components before each wildcard, run by run; among equals the first listed.
 * - Crossbar's prefix matching is by characters ("com.myapp" matches "com.myapp2.foobar",
 *   docs Pattern-Based-Subscriptions); ours is by components on purpose ("a.b" does not match
 *   "a.bc"), so a prefix rule never leaks into a sibling namespace.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../src/errors.js";
import {
  allows,
  allowsPattern,
  compareSpecificity,
  MAX_URI_CHARS,
  matches,
  mostSpecific,
  permsLetters,
  readPattern,
  readUri,
  ruleFromLetters,
  URI_ACTIONS,
  type UriAction,
  type UriMatchName,
  type UriPattern,
  type UriRule,
} from "../../src/login/uri-permissions.js";

/** Runs `f`, which must throw PARALLAX_ERR_BAD_ARGUMENT with exactly `message`. */
function expectBad(f: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    f();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ParallaxError);
  expect((thrown as ParallaxError).code).toBe(ErrorCode.BAD_ARGUMENT);
  expect((thrown as ParallaxError).message).toBe(message);
}

const rule = (uri: string, match: UriMatchName, letters: string): UriRule =>
  ruleFromLetters(uri, match, letters);
const exact = (uri: string): UriPattern => ({ uri, match: "exact" });
const prefix = (uri: string): UriPattern => ({ uri, match: "prefix" });
const wildcard = (uri: string): UriPattern => ({ uri, match: "wildcard" });

// --- arbitraries ---------------------------------------------------------------------------

const component = fc.constantFrom("a", "b", "c");
const uriArb = fc.array(component, { minLength: 1, maxLength: 4 }).map((cs) => cs.join("."));
const wildcardUriArb = fc
  .array(fc.oneof(component, fc.constant("")), { minLength: 1, maxLength: 4 })
  .map((cs) => cs.join("."))
  .filter((u) => u !== "");
const patternArb: fc.Arbitrary<UriPattern> = fc.oneof(
  uriArb.map(exact),
  fc.oneof({ weight: 5, arbitrary: uriArb }, { weight: 1, arbitrary: fc.constant("") }).map(prefix),
  wildcardUriArb.map(wildcard),
);
const ruleArb: fc.Arbitrary<UriRule> = fc
  .record({
    pattern: patternArb,
    call: fc.boolean(),
    register: fc.boolean(),
    publish: fc.boolean(),
    subscribe: fc.boolean(),
  })
  .map(({ pattern, ...perms }) => ({ ...pattern, ...perms }));
const rulesArb = fc.array(ruleArb, { maxLength: 8 });
const actionArb = fc.constantFrom<UriAction>(...URI_ACTIONS);

/** Reference matcher on component arrays, written independently of `matches`. */
function refMatches(p: UriPattern, uri: string): boolean {
  const u = uri.split(".");
  if (p.match === "exact") return p.uri === uri;
  if (p.match === "prefix") {
    if (p.uri === "") return true;
    const q = p.uri.split(".");
    return q.length <= u.length && q.every((c, i) => u[i] === c);
  }
  const q = p.uri.split(".");
  return q.length === u.length && q.every((c, i) => c === "" || u[i] === c);
}

// --- readUri / readPattern ----------------------------------------------------------------

describe("readUri", () => {
  it("accepts dotted URIs of loose WAMP form, up to 255 characters", () => {
    for (const uri of ["a", "com.example.chat", "Com-App_1.x:y", "ünï.côdé", "a".repeat(MAX_URI_CHARS)]) {
      expect(readUri(uri)).toBe(uri);
    }
  });

  it("refuses each fault with BAD_ARGUMENT naming it", () => {
    expectBad(() => readUri(""), "URI is empty");
    expectBad(() => readUri("a..b"), 'URI "a..b" has an empty component');
    expectBad(() => readUri(".a"), 'URI ".a" has an empty component');
    expectBad(() => readUri("a."), 'URI "a." has an empty component');
    expectBad(() => readUri("."), 'URI "." has an empty component');
    expectBad(() => readUri("a b"), `URI "a b" contains whitespace or '#'`);
    expectBad(() => readUri("a\tb"), `URI "a\tb" contains whitespace or '#'`);
    expectBad(() => readUri("a\u00a0b"), `URI "a\u00a0b" contains whitespace or '#'`);
    expectBad(() => readUri("a.b\n"), `URI "a.b\n" contains whitespace or '#'`);
    expectBad(() => readUri("a#b"), `URI "a#b" contains whitespace or '#'`);
    expectBad(() => readUri("a".repeat(MAX_URI_CHARS + 1)), "URI is longer than 255 characters");
    for (const notText of [42, undefined, null, ["a"], { toString: () => "a" }]) {
      expectBad(() => readUri(notText as never), "URI must be text");
    }
  });

  it("names the URI as the caller says", () => {
    expectBad(() => readUri("", "topic"), "topic is empty");
    expectBad(() => readUri("x..y", "procedure"), 'procedure "x..y" has an empty component');
  });
});

describe("readPattern", () => {
  it("returns the URI and match policy of well-formed patterns", () => {
    expect(readPattern("a.b", "exact")).toEqual({ uri: "a.b", match: "exact" });
    expect(readPattern("a.b", "prefix")).toEqual({ uri: "a.b", match: "prefix" });
    expect(readPattern("", "prefix")).toEqual({ uri: "", match: "prefix" });
    expect(readPattern("a..c", "wildcard")).toEqual({ uri: "a..c", match: "wildcard" });
    expect(readPattern(".", "wildcard")).toEqual({ uri: ".", match: "wildcard" });
    expect(readPattern("a.b", "wildcard")).toEqual({ uri: "a.b", match: "wildcard" });
  });

  it("allows empty components in wildcards only, and the empty URI as a prefix only", () => {
    expectBad(() => readPattern("", "exact"), "URI pattern is empty");
    expectBad(() => readPattern("", "wildcard"), "URI pattern is empty");
    expectBad(() => readPattern("a..c", "exact"), 'URI pattern "a..c" has an empty component');
    expectBad(() => readPattern("a..c", "prefix"), 'URI pattern "a..c" has an empty component');
    expectBad(() => readPattern("a.", "prefix"), 'URI pattern "a." has an empty component');
  });

  it("refuses whitespace, '#', length and non-text under every policy", () => {
    for (const match of ["exact", "prefix", "wildcard"] as const) {
      expectBad(() => readPattern("a. b", match), `URI pattern "a. b" contains whitespace or '#'`);
      expectBad(() => readPattern("a.#", match), `URI pattern "a.#" contains whitespace or '#'`);
      expectBad(() => readPattern("x".repeat(256), match), "URI pattern is longer than 255 characters");
      expectBad(() => readPattern(7 as never, match), "URI pattern must be text");
    }
  });

  it("refuses a match policy that is not exact, prefix or wildcard", () => {
    expectBad(
      () => readPattern("a.b", "regex" as never),
      `URI pattern's match must be exact, prefix or wildcard; got "regex"`,
    );
    expectBad(
      () => readPattern("a.b", undefined as never),
      `URI pattern's match must be exact, prefix or wildcard; got "undefined"`,
    );
  });

  it("names the pattern as the caller says", () => {
    expectBad(
      () => readPattern("a..b", "exact", "permission 3's URI pattern"),
      `permission 3's URI pattern "a..b" has an empty component`,
    );
  });
});

// --- matches -------------------------------------------------------------------------------

describe("matches", () => {
  it("exact: that URI only", () => {
    expect(matches(exact("a.b"), "a.b")).toBe(true);
    for (const u of ["a.b.c", "a", "a.bc", "b.a"]) expect(matches(exact("a.b"), u)).toBe(false);
  });

  it("prefix: that URI and those below it, component-wise", () => {
    for (const u of ["a.b", "a.b.c", "a.b.c.d"]) expect(matches(prefix("a.b"), u)).toBe(true);
    for (const u of ["a.bc", "a", "a.c.b", "x.a.b", "ab"]) expect(matches(prefix("a.b"), u)).toBe(false);
  });

  it('prefix "": every URI', () => {
    for (const u of ["a", "x.y.z", "com.example.chat.room.1"]) expect(matches(prefix(""), u)).toBe(true);
  });

  it("wildcard: the same number of components, an empty one matching any one", () => {
    for (const u of ["a.b.c", "a.x.c", "a.a.c"]) expect(matches(wildcard("a..c"), u)).toBe(true);
    for (const u of ["a.b.c.d", "a.c", "a.b.d", "b.b.c", "a.b.c.c"]) {
      expect(matches(wildcard("a..c"), u)).toBe(false);
    }
    expect(matches(wildcard(".."), "x.y.z")).toBe(true);
    expect(matches(wildcard(".."), "x.y")).toBe(false);
    expect(matches(wildcard("a.b"), "a.b")).toBe(true);
    expect(matches(wildcard("a.b"), "a.b.c")).toBe(false);
  });

  it("agrees with a component-wise reference on random patterns and URIs", () => {
    fc.assert(
      fc.property(patternArb, uriArb, (p, u) => {
        expect(matches(p, u)).toBe(refMatches(p, u));
      }),
      { numRuns: 2000 },
    );
  });
});

// --- precedence ----------------------------------------------------------------------------

describe("compareSpecificity and mostSpecific", () => {
  const target = "com.myapp.manage.47837483.create";
  // Crossbar's conflict-resolution example: all five match the call URI (its "com.myapp.manage..."
  // has one wildcard too many for a five-component URI; here it has the two that fit).
  const r1 = rule("com.myapp.manage.47837483.create", "exact", "c");
  const r2 = rule("com.myapp", "prefix", "c");
  const r3 = rule("com.myapp.manage", "prefix", "c");
  const r4 = rule("com.myapp.manage..", "wildcard", "c");
  const r5 = rule("com.myapp...create", "wildcard", "c");

  it("ranks exact over prefix over wildcard, in any listing order (Crossbar's example)", () => {
    for (const r of [r1, r2, r3, r4, r5]) expect(matches(r, target)).toBe(true);
    expect(mostSpecific([r5, r4, r3, r2, r1], target)).toBe(r1);
    expect(mostSpecific([r5, r4, r2, r3], target)).toBe(r3);
    expect(mostSpecific([r2, r5, r4], target)).toBe(r2);
    expect(compareSpecificity(r1, r2)).toBeLessThan(0);
    expect(compareSpecificity(r2, r4)).toBeLessThan(0);
    expect(compareSpecificity(r4, r1)).toBeGreaterThan(0);
  });

  it("prefers the longer prefix, whatever the order", () => {
    expect(mostSpecific([r2, r3], target)).toBe(r3);
    expect(mostSpecific([r3, r2], target)).toBe(r3);
    const root = rule("", "prefix", "c");
    expect(mostSpecific([root, r2], target)).toBe(r2);
    expect(compareSpecificity(root, r2)).toBeGreaterThan(0);
  });

  it("prefers the wildcard with more fixed components, then the earlier first fixed one", () => {
    const more = rule("a..c", "wildcard", "c");
    const fewer = rule("a..", "wildcard", "c");
    expect(mostSpecific([fewer, more], "a.b.c")).toBe(more);
    expect(mostSpecific([more, fewer], "a.b.c")).toBe(more);
    const early = rule("a...", "wildcard", "c");
    const late = rule(".b..", "wildcard", "c");
    expect(mostSpecific([late, early], "a.b.c.d")).toBe(early);
    expect(mostSpecific([early, late], "a.b.c.d")).toBe(early);
    expect(compareSpecificity(late, early)).toBeGreaterThan(0);
  });

  it("takes the first listed among equally specific rules", () => {
    // Crossbar's example again: by WAMP's runs "com.myapp.manage.." (a first run of three)
    // beats "com.myapp...create" (two), in either order.
    expect(compareSpecificity(r4, r5)).toBeLessThan(0);
    expect(mostSpecific([r4, r5], target)).toBe(r4);
    expect(mostSpecific([r5, r4], target)).toBe(r4);
    const allow = rule("a.b", "prefix", "s");
    const deny = rule("a.b", "prefix", "");
    expect(mostSpecific([allow, deny], "a.b.c")).toBe(allow);
    expect(mostSpecific([deny, allow], "a.b.c")).toBe(deny);
  });

  it("orders wildcards by WAMP's runs of fixed components, run by run", () => {
    // "a.b.." has a first run of two fixed components, "a..c.d" one: the first wins though it
    // has fewer fixed components in all.
    const runs = rule("a.b..", "wildcard", "c");
    const count = rule("a..c.d", "wildcard", "c");
    expect(mostSpecific([count, runs], "a.b.c.d")).toBe(runs);
    // WAMP's own example: "a1.b2.c3..e5" beats "a1.b2..d4.e5", whichever is listed first.
    const w4 = rule("a1.b2..d4.e5", "wildcard", "c");
    const w5 = rule("a1.b2.c3..e5", "wildcard", "c");
    expect(compareSpecificity(w5, w4)).toBeLessThan(0);
    expect(mostSpecific([w4, w5], "a1.b2.c3.d4.e5")).toBe(w5);
    // Equal runs: the first listed.
    const x = rule("a..c", "wildcard", "c");
    const y = rule("a..c", "wildcard", "p");
    expect(mostSpecific([y, x], "a.b.c")).toBe(y);
  });

  it("answers undefined when nothing matches, and takes any iterable", () => {
    expect(mostSpecific([], "a")).toBeUndefined();
    expect(mostSpecific([r1, r2, r3], "org.other")).toBeUndefined();
    expect(mostSpecific(new Set([r2, r3]), target)).toBe(r3);
    function* gen() {
      yield r4;
      yield r2;
    }
    expect(mostSpecific(gen(), target)).toBe(r2);
  });

  it("is antisymmetric on random patterns", () => {
    fc.assert(
      fc.property(patternArb, patternArb, (a, b) => {
        expect(Math.sign(compareSpecificity(a, b))).toBe(-Math.sign(compareSpecificity(b, a)) || 0);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: picks a matching rule that no other matching rule beats, the first listed among equals", () => {
    fc.assert(
      fc.property(rulesArb, uriArb, (rules, uri) => {
        const best = mostSpecific(rules, uri);
        const matching = rules.filter((r) => refMatches(r, uri));
        if (matching.length === 0) {
          expect(best).toBeUndefined();
          return;
        }
        expect(best).toBeDefined();
        const b = best as UriRule;
        expect(refMatches(b, uri)).toBe(true);
        const at = rules.indexOf(b);
        rules.forEach((r, i) => {
          if (!refMatches(r, uri)) return;
          expect(compareSpecificity(r, b)).toBeGreaterThanOrEqual(0);
          if (i < at) expect(compareSpecificity(r, b)).toBeGreaterThan(0);
        });
      }),
      { numRuns: 2000 },
    );
  });
});

// --- allows ----------------------------------------------------------------------------------

describe("allows", () => {
  it("denies everything when no rule matches", () => {
    for (const a of URI_ACTIONS) {
      expect(allows([], "com.app", a)).toBe(false);
      expect(allows([rule("org", "prefix", "crps")], "com.app", a)).toBe(false);
    }
  });

  it("lets the most specific matching rule decide alone, per action", () => {
    const rules = [rule("com", "prefix", "crps"), rule("com.app.x", "exact", "c")];
    expect(allows(rules, "com.app.x", "call")).toBe(true);
    // No union with the broader rule: "com" would allow subscribe, but it does not decide here.
    expect(allows(rules, "com.app.x", "subscribe")).toBe(false);
    expect(allows(rules, "com.app.y", "subscribe")).toBe(true);
  });

  it("lets a more specific deny override a broader allow, and the reverse", () => {
    const rules = [rule("com", "prefix", "crps"), rule("com.app.secret", "prefix", "")];
    for (const a of URI_ACTIONS) {
      expect(allows(rules, "com.app.secret", a)).toBe(false);
      expect(allows(rules, "com.app.secret.keys", a)).toBe(false);
      expect(allows(rules, "com.app.secretive", a)).toBe(true);
      expect(allows(rules, "com.app", a)).toBe(true);
    }
    const open = [rule("", "prefix", ""), rule("com.pub", "prefix", "s")];
    expect(allows(open, "com.pub.news", "subscribe")).toBe(true);
    expect(allows(open, "com.pub.news", "publish")).toBe(false);
    expect(allows(open, "com.other", "subscribe")).toBe(false);
  });

  it("lets any prefix rule outrank a wildcard rule, however many fixed components it has", () => {
    const rules = [rule("com.app..x", "wildcard", "crps"), rule("com", "prefix", "")];
    expect(allows(rules, "com.app.y.x", "call")).toBe(false);
    expect(allows([rule("com.app..x", "wildcard", "c")], "com.app.y.x", "call")).toBe(true);
  });

  it("property: rules that do not match the URI change nothing; an exact rule listed first decides", () => {
    fc.assert(
      fc.property(rulesArb, rulesArb, uriArb, actionArb, fc.boolean(), (rules, extra, uri, action, grant) => {
        const before = allows(rules, uri, action);
        const others = extra.filter((r) => !refMatches(r, uri));
        expect(allows([...others, ...rules], uri, action)).toBe(before);
        expect(allows([...rules, ...others], uri, action)).toBe(before);
        const decisive = { ...exact(uri), call: grant, register: grant, publish: grant, subscribe: grant };
        expect(allows([decisive, ...rules], uri, action)).toBe(grant);
      }),
      { numRuns: 1000 },
    );
  });
});

// --- allowsPattern ----------------------------------------------------------------------------

describe("allowsPattern", () => {
  it('allows a prefix subscription on "com.app" by a prefix rule "com", and refuses when that rule denies', () => {
    expect(allowsPattern([rule("com", "prefix", "s")], prefix("com.app"), "subscribe")).toBe(true);
    expect(allowsPattern([rule("com", "prefix", "p")], prefix("com.app"), "subscribe")).toBe(false);
    expect(allowsPattern([rule("com", "prefix", "")], prefix("com.app"), "subscribe")).toBe(false);
    expect(allowsPattern([rule("com", "prefix", "s")], prefix("com"), "subscribe")).toBe(true);
    expect(allowsPattern([rule("com", "prefix", "s")], prefix("co"), "subscribe")).toBe(false);
    expect(allowsPattern([rule("com", "prefix", "s")], prefix("comet"), "subscribe")).toBe(false);
  });

  it("is governed by the most specific rule covering the whole pattern", () => {
    const rules = [rule("com", "prefix", "s"), rule("com.app", "prefix", "")];
    expect(allowsPattern(rules, prefix("com.app.x"), "subscribe")).toBe(false);
    expect(allowsPattern(rules, prefix("com.app"), "subscribe")).toBe(false);
    // "com" covers the pattern "com"; "com.app" is narrower and is checked per URI when used.
    expect(allowsPattern(rules, prefix("com"), "subscribe")).toBe(true);
    expect(allows(rules, "com.app.y", "subscribe")).toBe(false);
    // A narrower allow does not open a broader pattern.
    const narrow = [rule("com", "prefix", ""), rule("com.app.public", "prefix", "s")];
    expect(allowsPattern(narrow, prefix("com.app"), "subscribe")).toBe(false);
    expect(allowsPattern(narrow, prefix("com.app.public.news"), "subscribe")).toBe(true);
  });

  it("governs a wildcard pattern by a prefix rule on its leading fixed components", () => {
    expect(allowsPattern([rule("com.app", "prefix", "s")], wildcard("com.app..x"), "subscribe")).toBe(true);
    expect(allowsPattern([rule("com", "prefix", "s")], wildcard("com...x"), "subscribe")).toBe(true);
    // "com.app.y" would need the wildcard's third component fixed to "y".
    expect(allowsPattern([rule("com.app.y", "prefix", "s")], wildcard("com.app..x"), "subscribe")).toBe(
      false,
    );
    // A prefix rule reaching past the wildcard's first empty component does not cover it.
    expect(allowsPattern([rule("com.app.y.x", "prefix", "s")], wildcard("com.app..x"), "subscribe")).toBe(
      false,
    );
    expect(allowsPattern([rule("com", "prefix", "s")], wildcard("..x"), "subscribe")).toBe(false);
    expect(allowsPattern([rule("com.app", "prefix", "")], wildcard("com.app..x"), "subscribe")).toBe(false);
  });

  it("governs a wildcard pattern by a wildcard rule that matches all it matches", () => {
    const w = [rule("com..x", "wildcard", "r")];
    expect(allowsPattern(w, wildcard("com..x"), "register")).toBe(true);
    expect(allowsPattern(w, wildcard("com...x"), "register")).toBe(false);
    expect(allowsPattern(w, wildcard("com.a."), "register")).toBe(false);
    expect(allowsPattern(w, wildcard("..x"), "register")).toBe(false);
    // A wildcard rule never covers a prefix pattern (those reach every depth).
    expect(allowsPattern([rule("com..", "wildcard", "s")], prefix("com.app"), "subscribe")).toBe(false);
    // Nor does an exact rule.
    expect(allowsPattern([rule("com.app", "exact", "s")], prefix("com.app"), "subscribe")).toBe(false);
  });

  it('needs a root rule for the prefix pattern ""', () => {
    expect(allowsPattern([rule("com", "prefix", "s")], prefix(""), "subscribe")).toBe(false);
    expect(
      allowsPattern([rule("com", "prefix", "s"), rule("", "prefix", "s")], prefix(""), "subscribe"),
    ).toBe(true);
    expect(allowsPattern([rule("", "prefix", ""), rule("com", "prefix", "s")], prefix(""), "subscribe")).toBe(
      false,
    );
  });

  it("decides a one-URI pattern (exact, or a wildcard without a wildcard) as allows does", () => {
    const rules = [rule("a", "prefix", "crps"), rule("a.b", "exact", "")];
    expect(allows(rules, "a.b", "subscribe")).toBe(false);
    expect(allowsPattern(rules, exact("a.b"), "subscribe")).toBe(false);
    expect(allowsPattern(rules, wildcard("a.b"), "subscribe")).toBe(false);
    expect(allowsPattern(rules, wildcard("a.c"), "subscribe")).toBe(true);
  });

  it("property: a one-URI pattern agrees with allows on that URI", () => {
    fc.assert(
      fc.property(rulesArb, uriArb, actionArb, (rules, uri, action) => {
        const want = allows(rules, uri, action);
        expect(allowsPattern(rules, exact(uri), action)).toBe(want);
        expect(allowsPattern(rules, wildcard(uri), action)).toBe(want);
      }),
      { numRuns: 1000 },
    );
  });

  it("property: a rule governs a pattern only if it matches every URI the pattern matches", () => {
    const someUris = fc.array(uriArb, { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(patternArb, patternArb, someUris, (rp, p, uris) => {
        const r: UriRule = { ...rp, call: true, register: true, publish: true, subscribe: true };
        if (!allowsPattern([r], p, "subscribe")) return;
        for (const u of uris) if (refMatches(p, u)) expect(refMatches(r, u)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

// --- letters -------------------------------------------------------------------------------------

describe("ruleFromLetters and permsLetters", () => {
  it("reads Nexus' letters in any order and writes them back in c, r, p, s order", () => {
    const all = ruleFromLetters("com.app", "prefix", "spcr");
    expect(all).toEqual({
      uri: "com.app",
      match: "prefix",
      call: true,
      register: true,
      publish: true,
      subscribe: true,
    });
    expect(permsLetters(all)).toBe("crps");
    const none = ruleFromLetters("com.app", "exact", "");
    expect([none.call, none.register, none.publish, none.subscribe]).toEqual([false, false, false, false]);
    expect(permsLetters(none)).toBe("");
    const some = ruleFromLetters("a..c", "wildcard", "sc");
    expect([some.call, some.register, some.publish, some.subscribe]).toEqual([true, false, false, true]);
    expect(permsLetters(some)).toBe("cs");
  });

  it("round-trips every set of letters", () => {
    const letters = fc
      .subarray(["c", "r", "p", "s"])
      .chain((ls) => fc.shuffledSubarray(ls, { minLength: ls.length }));
    fc.assert(
      fc.property(letters, patternArb, (ls, p) => {
        const r = ruleFromLetters(p.uri, p.match, ls.join(""));
        const canonical = "crps"
          .split("")
          .filter((c) => ls.includes(c))
          .join("");
        expect(permsLetters(r)).toBe(canonical);
        expect(ruleFromLetters(p.uri, p.match, permsLetters(r))).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses unknown letters, naming what it got", () => {
    for (const bad of ["x", "C", "c s", "cx", "crpsx", "🙂", "call"]) {
      expectBad(
        () => ruleFromLetters("a", "exact", bad),
        `permission letters are c, r, p and s; got "${bad}"`,
      );
    }
    expectBad(() => ruleFromLetters("a", "exact", undefined as never), "permission letters must be text");
    expectBad(() => ruleFromLetters("a", "exact", ["c"] as never), "permission letters must be text");
  });

  it("checks the pattern before the letters", () => {
    expectBad(() => ruleFromLetters("a..b", "exact", "zz"), 'URI pattern "a..b" has an empty component');
    expectBad(() => ruleFromLetters("", "wildcard", "c"), "URI pattern is empty");
  });
});
