/**
 * The pages' size budget (issue 13 §1): what each page loads at once, minified and gzipped, stays
 * under the figure the README states. Raise the budget only together with the README, saying why.
 */
import { describe, expect, it } from "vitest";
import { WEB_PAGES } from "../../src/web/pages.js";
import { webBundle } from "../../src/web-server.js";

/** KiB gzipped at load, per page (README "Web pages"); measured 93–115 KiB on 2026-12-04. */
const BUDGET_GZIPPED_KIB = 125;
/** KiB minified at load, per page. */
const BUDGET_MINIFIED_KIB = 500;

describe("the pages' bundle", () => {
  it(`keeps every page under ${BUDGET_GZIPPED_KIB} KiB gzipped and ${BUDGET_MINIFIED_KIB} KiB minified at load`, async () => {
    const { sizes } = await webBundle();
    expect(sizes.map((s) => s.path).sort()).toEqual(WEB_PAGES.map((p) => p.path).sort());
    for (const s of sizes) {
      expect(s.gzippedBytes / 1024, `${s.path} gzipped`).toBeLessThan(BUDGET_GZIPPED_KIB);
      expect(s.minifiedBytes / 1024, `${s.path} minified`).toBeLessThan(BUDGET_MINIFIED_KIB);
      expect(s.gzippedBytes).toBeLessThan(s.minifiedBytes);
    }
  });
});
