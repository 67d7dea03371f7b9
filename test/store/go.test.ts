/**
 * The Go repository: a challenge makes one game, moves are numbered without gaps, finished games
 * never change, every player write checks the login and the seat inside its transaction, and
 * games survive closing and reopening the file.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import {
  GO_STORE,
  type GoActor,
  type GoGameInit,
  type GoStore,
  type IdentityRecord,
  type SqliteBrokerStore,
} from "../../src/store/index.js";
import { TempStores } from "./fixtures.js";

let t: TempStores;
let store: SqliteBrokerStore;
let go: GoStore;
let alice: IdentityRecord;
let bob: IdentityRecord;
let carol: IdentityRecord;
const as = (i: IdentityRecord): GoActor => ({ identityId: i.id, epoch: i.epoch });
const code = (c: string) => expect.objectContaining({ code: c });

beforeEach(async () => {
  t = new TempStores();
  store = t.open();
  go = store.repository(GO_STORE) as GoStore;
  alice = await store.createIdentity({ name: "alice", verifier: null, keyring: [] });
  bob = await store.createIdentity({ name: "bob", verifier: null, keyring: [] });
  carol = await store.createIdentity({ name: "carol", verifier: null, keyring: [] });
});
afterEach(() => t.cleanup());

const init = (black: IdentityRecord, white: IdentityRecord, ranked = false): GoGameInit => ({
  blackId: black.id,
  whiteId: white.id,
  rules: '{"size":9}',
  time: '{"system":"none"}',
  ranked,
  state: "{}",
  createdAt: 1,
});

describe("challenges", () => {
  it("are listed to everyone when open, to the named opponent only when addressed", async () => {
    const open = await go.createChallenge(as(alice), { opponentId: null, terms: "{}", at: 1, maxOpen: 5 });
    const toBob = await go.createChallenge(as(alice), { opponentId: bob.id, terms: "{}", at: 2, maxOpen: 5 });
    expect(open.challengerName).toBe("alice");
    expect((await go.listChallenges(bob.id, 10)).map((c) => c.id)).toEqual([open.id, toBob.id]);
    expect((await go.listChallenges(carol.id, 10)).map((c) => c.id)).toEqual([open.id]);
    expect((await go.listChallenges(alice.id, 10)).map((c) => c.id)).toEqual([open.id, toBob.id]);
  });

  it("are capped per challenger (QUOTA), and the refused one is not stored", async () => {
    for (let i = 0; i < 2; i++) {
      await go.createChallenge(as(alice), { opponentId: null, terms: "{}", at: i, maxOpen: 2 });
    }
    await expect(
      go.createChallenge(as(alice), { opponentId: null, terms: "{}", at: 9, maxOpen: 2 }),
    ).rejects.toEqual(code(ErrorCode.QUOTA));
    expect(await go.listChallenges(carol.id, 10)).toHaveLength(2);
  });

  it("make exactly one game when two players accept at once", async () => {
    const c = await go.createChallenge(as(alice), { opponentId: null, terms: "{}", at: 1, maxOpen: 5 });
    const [b, k] = await Promise.all([
      go.acceptChallenge(as(bob), c.id, init(alice, bob)),
      go.acceptChallenge(as(carol), c.id, init(carol, alice)),
    ]);
    expect(b?.blackName).toBe("alice");
    expect(b?.whiteName).toBe("bob");
    expect(k).toBeUndefined();
    expect(await go.gamesOf(alice.id, true, 10)).toHaveLength(1);
    expect(await go.getChallenge(c.id)).toBeUndefined();
  });

  it("refuse an acceptor the challenge is not addressed to, a game seating someone else, and a cancel by another", async () => {
    const c = await go.createChallenge(as(alice), { opponentId: bob.id, terms: "{}", at: 1, maxOpen: 5 });
    await expect(go.acceptChallenge(as(carol), c.id, init(alice, carol))).rejects.toEqual(
      code(ErrorCode.PERMISSION_DENIED),
    );
    await expect(go.acceptChallenge(as(bob), c.id, init(alice, carol))).rejects.toEqual(
      code(ErrorCode.BAD_ARGUMENT),
    );
    expect(await go.cancelChallenge(as(bob), c.id)).toBe(false);
    expect(await go.getChallenge(c.id)).toBeDefined();
    expect(await go.cancelChallenge(as(alice), c.id)).toBe(true);
    expect(await go.getChallenge(c.id)).toBeUndefined();
  });

  it("refuse a login that is no longer current (REVOKED), storing nothing", async () => {
    await store.bumpEpoch(alice.id);
    await expect(
      go.createChallenge(as(alice), { opponentId: null, terms: "{}", at: 1, maxOpen: 5 }),
    ).rejects.toEqual(code(ErrorCode.REVOKED));
    expect(await go.listChallenges(bob.id, 10)).toEqual([]);
  });
});

describe("games", () => {
  it("number moves 1..n without gaps and refuse a move that does not follow (conflict)", async () => {
    const g = await go.createGame(null, init(alice, bob));
    const m = (color: "black" | "white", x: number | null) => ({ color, x, y: x, at: 5 });
    expect(await go.appendMove(as(alice), g.id, 1, m("black", 2), '{"n":1}', "playing")).toEqual({
      kind: "ok",
    });
    expect((await go.appendMove(as(bob), g.id, 3, m("white", 3), "{}", "playing")).kind).toBe("conflict");
    expect((await go.appendMove(as(bob), g.id, 1, m("white", 3), "{}", "playing")).kind).toBe("conflict");
    expect(await go.appendMove(as(bob), g.id, 2, m("white", null), '{"n":2}', "playing")).toEqual({
      kind: "ok",
    });
    expect(await go.moves(g.id)).toEqual([
      { number: 1, color: "black", x: 2, y: 2, at: 5 },
      { number: 2, color: "white", x: null, y: null, at: 5 },
    ]);
    const after = await go.getGame(g.id);
    expect(after?.moveCount).toBe(2);
    expect(after?.state).toBe('{"n":2}');
  });

  it("undo removes a suffix only from the count it expects", async () => {
    const g = await go.createGame(null, init(alice, bob));
    for (let n = 1; n <= 3; n++) {
      await go.appendMove(
        null,
        g.id,
        n,
        { color: n % 2 ? "black" : "white", x: n, y: 0, at: n },
        "{}",
        "playing",
      );
    }
    expect((await go.undoMoves(as(alice), g.id, 2, 1, "{}")).kind).toBe("conflict");
    expect(await go.undoMoves(as(alice), g.id, 3, 1, '{"u":1}')).toEqual({ kind: "ok" });
    expect((await go.moves(g.id)).map((m) => m.number)).toEqual([1]);
    expect((await go.getGame(g.id))?.moveCount).toBe(1);
    await expect(go.undoMoves(as(alice), g.id, 1, 2, "{}")).rejects.toEqual(code(ErrorCode.BAD_ARGUMENT));
  });

  it("refuse a player who does not sit in the game (PERMISSION_DENIED) and a stale login (REVOKED)", async () => {
    const g = await go.createGame(null, init(alice, bob));
    const move = { color: "black" as const, x: 0, y: 0, at: 1 };
    await expect(go.appendMove(as(carol), g.id, 1, move, "{}", "playing")).rejects.toEqual(
      code(ErrorCode.PERMISSION_DENIED),
    );
    await store.setSuspended(alice.id, true);
    await expect(go.appendMove(as(alice), g.id, 1, move, "{}", "playing")).rejects.toEqual(
      code(ErrorCode.REVOKED),
    );
    expect(await go.moves(g.id)).toEqual([]);
    await expect(go.appendMove(null, 999, 1, move, "{}", "playing")).rejects.toEqual(
      code(ErrorCode.NOT_FOUND),
    );
  });

  it("a finished game never changes again; its result and both ratings commit together", async () => {
    const g = await go.createGame(null, init(alice, bob, true));
    const ratings = [
      { identityId: alice.id, rating: 1600, deviation: 180, volatility: 0.06, games: 1 },
      { identityId: bob.id, rating: 1400, deviation: 180, volatility: 0.06, games: 1 },
    ];
    expect(await go.finishGame(as(bob), g.id, { result: "B+R", state: "{}", at: 9, ratings })).toEqual({
      kind: "ok",
    });
    const done = await go.getGame(g.id);
    expect(done?.phase).toBe("finished");
    expect(done?.result).toBe("B+R");
    expect(done?.endedAt).toBe(9);
    expect((await go.getRating(alice.id))?.rating).toBe(1600);
    expect(
      (await go.appendMove(as(alice), g.id, 1, { color: "black", x: 0, y: 0, at: 1 }, "{}", "playing")).kind,
    ).toBe("conflict");
    expect((await go.finishGame(null, g.id, { result: "W+R", state: "{}", at: 10, ratings: [] })).kind).toBe(
      "conflict",
    );
    expect((await go.getGame(g.id))?.result).toBe("B+R");
    expect(await go.unfinishedGames()).toEqual([]);
  });

  it("a rating for someone outside the game rolls the whole finish back", async () => {
    const g = await go.createGame(null, init(alice, bob, true));
    const ratings = [
      { identityId: alice.id, rating: 1600, deviation: 180, volatility: 0.06, games: 1 },
      { identityId: carol.id, rating: 1400, deviation: 180, volatility: 0.06, games: 1 },
    ];
    await expect(go.finishGame(null, g.id, { result: "B+R", state: "{}", at: 9, ratings })).rejects.toEqual(
      code(ErrorCode.BAD_ARGUMENT),
    );
    expect((await go.getGame(g.id))?.phase).toBe("playing");
    expect(await go.getRating(alice.id)).toBeUndefined();
  });

  it("survive closing and reopening the file, unfinished ones listed for rebuilding", async () => {
    const g = await go.createGame(null, init(alice, bob));
    await go.appendMove(as(alice), g.id, 1, { color: "black", x: 4, y: 4, at: 3 }, '{"clock":1}', "playing");
    const done = await go.createGame(null, init(bob, alice));
    await go.finishGame(null, done.id, { result: "W+T", state: "{}", at: 4, ratings: [] });
    store.close();
    const again = t.open().repository(GO_STORE) as GoStore;
    expect((await again.unfinishedGames()).map((x) => x.id)).toEqual([g.id]);
    expect(await again.moves(g.id)).toEqual([{ number: 1, color: "black", x: 4, y: 4, at: 3 }]);
    expect((await again.getGame(g.id))?.state).toBe('{"clock":1}');
    expect((await again.gamesOf(alice.id, false, 10)).map((x) => x.id)).toEqual([g.id]);
    expect((await again.gamesOf(alice.id, true, 10)).map((x) => x.id)).toEqual([done.id, g.id]);
  });
});
