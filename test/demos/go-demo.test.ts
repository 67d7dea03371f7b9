/** Runs `demos/go-demo.ts` as a user would and checks that it tells seed 004's Go server step by step. */
import { describe, expect, it } from "vitest";
import { expectInOrder, runDemo } from "../helpers/demo.js";
import { findGnuGo } from "../../src/services/go/gtp-engine.js";

describe("the Go demo", () => {
  it("runs every step as described and exits 0", { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runDemo("go-demo.ts");
    expect(stdout, stderr).not.toContain("✘");
    const all = [
      "## A challenge, accepted: the game is one Viewable shared by both players",
      '✔ 1. alice challenged (9×9, positional superko, area scoring, komi 6.5, byo-yomi 10 min + 5×30 s, ranked); bob sees challenge 1 from "alice"',
      "✔ 2. bob accepted; alice's challenge answered with the same game 1: black alice, white bob",
      "✔ 3. carol watches through a Spectator capability and listens; alice listens too",
      "✔ 4. 18 moves: black walls off columns 0–3 with column 3, white columns 5–8 with column 5",
      "## A capture, a refused ko recapture, a refused move out of turn",
      "✔ 5. black played (7,2) inside white's area and captured the white stone at (7,1)",
      "✔ 6. white's immediate recapture at (7,1): refused: KO",
      "✔ 7. alice moves again while it is bob's turn: refused: NOT_YOUR_TURN (her Game plays only black)",
      "✔ 8. carol's Spectator cast to Game and called move: PARALLAX_ERR_UNIMPLEMENTED",
      "## An accepted undo",
      "✔ 9. alice played (4,4), asked to take it back, bob accepted: 28 moves, (4,4) empty again",
      "## Chat: players' lines reach everyone, spectators' only spectators",
      '✔ 10. alice heard ["chat bob: thanks for the game"]; carol heard both lines',
      "## Two passes, dead stones, the score",
      "✔ 11. white and black passed: play stopped for scoring",
      "✔ 12. bob marked black's four stones inside his area dead: black 36, white 42.5 (36 + komi 6.5)",
      "✔ 13. both accepted: the game ended W+6.5; carol heard the end",
      "## The game as SGF",
      "✔ 14. carol exported the game as SGF FF[4]; read back, its 31 moves give the same final board",
      "✔ 15. ranked: Glicko-2 moved bob to 1662.3 and alice to 1337.7 (RD 290.3)",
      "## A game against GNU Go, seated by the broker",
      "✔ 16. alice played black against gnugo (bot): it answered each of her 3 moves (6 moves); she resigned: W+R",
      "all 16 steps behaved as described",
    ];
    // Without GNU Go the demo says how to install it and skips its last step.
    const expected =
      findGnuGo() === undefined
        ? [
            ...all.filter((l) => !l.includes("GNU Go") && !l.startsWith("✔ 16.")),
            "all 15 steps behaved as described",
          ].filter((l) => l !== "all 16 steps behaved as described")
        : all;
    expectInOrder(stdout, expected);
    expect(code, stdout + stderr).toBe(0);
  });
});
