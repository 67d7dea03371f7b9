/**
 * The comparison key of a user name: two names are one name when their keys are equal.
 *
 * key(s) = NFKC(caseFold(NFKC(s))), with Unicode's full, locale-independent case folding (the
 * idea of Unicode's NFKC_Casefold, without its removal of default-ignorable characters: names
 * holding those are refused before they get here). So `Alice`, `ALICE`, `ａｌｉｃｅ` and `𝐀𝐥𝐢𝐜𝐞`
 * are one name, `Straße` is `STRASSE`, `ǅemal` is `ǆemal`, and final `ς` is `σ`. The Turkish
 * letters follow Unicode's default folding, not Turkish rules: `İ` folds to `i̇` (i plus
 * combining dot above), so `ALİCE` is `ali̇ce`, not `alice`; dotless `ı` stays itself, apart from
 * `i` and `I`.
 *
 * JavaScript has no case folding. Per code point c, lower(upper(lower(c))) gives Unicode's full
 * case folding for every code point but two kinds, which are handled on their own:
 * - Cherokee folds to its uppercase letters (the lowercase ones were added later, in Unicode 8,
 *   and CaseFolding.txt keeps the older uppercase as the folded form).
 * - `ı` (U+0131) has no folding; the round trip would make it `i`.
 * The rule is checked against Python's `str.casefold` with NFKC for every code point Python's
 * Unicode data assigns (test/store/name-key.test.ts and its generated fixture).
 *
 * Invariants: the key is a pure function of the string (no locale, no state); equal strings after
 * NFKC give equal keys; and key(key(s)) = key(s) (checked for every code point by the test).
 *
 * Tests: test/store/name-key.test.ts
 */

const CHEROKEE = /\p{Script=Cherokee}/u;
const PRINTABLE_ASCII = /^[ -~]*$/;

/** The comparison key of `name` (see the header). Never throws. */
export function nameKey(name: string): string {
  // NFKC leaves ASCII as it is, and ASCII folds to its lowercase.
  if (PRINTABLE_ASCII.test(name)) return name.toLowerCase();
  let folded = "";
  for (const c of name.normalize("NFKC")) folded += foldCodePoint(c);
  return folded.normalize("NFKC");
}

/** True when `a` and `b` are the same user name. */
export function sameName(a: string, b: string): boolean {
  return a === b || nameKey(a) === nameKey(b);
}

function foldCodePoint(c: string): string {
  if (c === "\u0131") return c;
  if (CHEROKEE.test(c)) return c.toUpperCase();
  return c.toLowerCase().toUpperCase().toLowerCase();
}
