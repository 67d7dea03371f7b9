/**
 * The Go server's security claims (issue 11): Alice cannot move for Bob by any reference she
 * holds, cannot reach a game she does not play except read-only, cannot take a challenge meant for
 * someone else; a revoked login's calls fail, pipelined ones included, and the opponent plays on.
 * Ranked games move Glicko-2 ratings, committed with the result.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { makeVerifier } from "../../../src/login/client-login.js";
import { attach } from "../../../src/login/index.js";
import { GO_PLAYER } from "../../../src/services/go/go-keys.js";
import { Illegal } from "../../../src/wire/gen/go.js";
import { rejection } from "../../helpers/errors.js";
import { kdf } from "../../login/harness.js";
import { type GoWorld, kindOf, makeGo, NINE } from "./go-harness.js";

let w: GoWorld | undefined;
afterEach(async () => {
  await w?.h.close();
  w = undefined;
});

describe("who plays", () => {
  it("is the caller's seat: the one shared Game object never plays Bob's colour for Alice", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await g.black.move({ point: { x: 4, y: 4 } });
    // Alice's every hold on the game — from challenge(), game(), watch() — plays black or nothing.
    const viaGame = (await alice.player.game({ id: g.id })).game;
    expect((await viaGame.move({ point: { x: 3, y: 3 } })).outcome.illegal).toBe(Illegal.NOT_YOUR_TURN);
    expect((await viaGame.resign()).outcome.ended).toBe("W+R");
    expect((await g.white.info()).info.result).toBe("W+R");
  });

  it("gives a non-player no Game, refuses a challenge meant for someone else and one's own", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const carol = await w.user("carol");
    const g = await w.game(alice, bob);
    expect((await rejection(carol.player.game({ id: g.id }))).code).toBe(ErrorCode.NOT_FOUND);
    expect((await rejection(carol.player.game({ id: 999n }))).code).toBe(ErrorCode.NOT_FOUND);
    const { id } = await alice.player.challenge({ terms: { ...NINE, opponent: "bob" } });
    expect((await carol.player.openChallenges()).challenges.getLength()).toBe(0);
    expect((await rejection(carol.player.accept({ id }))).code).toBe(ErrorCode.PERMISSION_DENIED);
    expect((await rejection(alice.player.accept({ id }))).code).toBe(ErrorCode.PERMISSION_DENIED);
    // Only the challenger withdraws a challenge.
    const other = await alice.player.challenge({ terms: NINE });
    expect((await bob.player.cancelChallenge({ id: other.id })).cancelled).toBe(false);
    expect((await alice.player.cancelChallenge({ id: other.id })).cancelled).toBe(true);
    expect((await rejection(bob.player.accept({ id: other.id }))).code).toBe(ErrorCode.NOT_FOUND);
    const info = (await (await bob.player.accept({ id })).game.info()).info;
    expect([info.black, info.white]).toEqual(["alice", "bob"]);
  });
});

describe("revocation", () => {
  it("fails every call of a revoked login, pipelined ones included; the opponent's game lives on", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const g = await w.game(alice, bob);
    await g.black.move({ point: { x: 4, y: 4 } });
    await g.white.move({ point: { x: 3, y: 3 } });
    const { verifier } = await makeVerifier("alice new pass", { kdf });
    await alice.identity.changePassword({ newVerifier: verifier });
    expect((await rejection(g.black.move({ point: { x: 5, y: 5 } }))).code).toBe(ErrorCode.REVOKED);
    expect((await rejection(alice.player.game({ id: g.id }).game.move({ point: { x: 5, y: 5 } }))).code).toBe(
      ErrorCode.REVOKED,
    );
    expect((await rejection(alice.player.challenge({ terms: NINE }))).code).toBe(ErrorCode.REVOKED);
    expect((await g.white.info()).info.moveCount).toBe(2);
    // Alice logs in again with her new password and gets her seat back.
    const { identity } = await w.h.login("alice", "alice new pass");
    const again = (await attach(identity, GO_PLAYER).game({ id: g.id })).game;
    expect(kindOf((await again.move({ point: { x: 5, y: 5 } })).outcome)).toBe("played");
  });
});

describe("ranked games", () => {
  it("move both players' Glicko-2 ratings with the result; unranked ones, and games a player never moved in, move none", async () => {
    w = await makeGo();
    const alice = await w.user("alice");
    const bob = await w.user("bob");
    const casual = await w.game(alice, bob);
    await casual.white.resign();
    expect((await alice.player.rating()).rating.games).toBe(0);
    // A ranked game resigned before white moved is not rated.
    const early = await w.game(alice, bob, { ...NINE, ranked: true });
    await early.black.move({ point: { x: 4, y: 4 } });
    expect((await early.white.resign()).outcome.ended).toBe("B+R");
    expect((await alice.player.rating()).rating.games).toBe(0);
    const ranked = await w.game(alice, bob, { ...NINE, ranked: true });
    await ranked.black.move({ point: { x: 4, y: 4 } });
    await ranked.white.move({ point: { x: 3, y: 3 } });
    expect((await ranked.white.resign()).outcome.ended).toBe("B+R");
    const a = (await alice.player.rating()).rating;
    const b = (await bob.player.rating()).rating;
    expect(a.games).toBe(1);
    expect(b.games).toBe(1);
    // Equal newcomers (1500, RD 350): the winner gains what the loser loses, and both RDs shrink.
    expect(a.rating).toBeGreaterThan(1500);
    expect(a.rating - 1500).toBeCloseTo(1500 - b.rating, 6);
    expect(a.deviation).toBeLessThan(350);
  });
});
