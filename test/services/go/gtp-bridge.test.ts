import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../../../src/client.js";
import { loginWithPassword, makeVerifier } from "../../../src/login/client-login.js";
import { attach } from "../../../src/login/index.js";
import { startBroker } from "../../../src/server.js";
import { GO_PLAYER } from "../../../src/services/go/go-keys.js";
import { Root } from "../../../src/wire/gen/broker.js";
import { findGnuGo } from "../../../src/services/go/gtp-engine.js";
import { fixedHandicapPoints } from "../../../src/services/go/handicap.js";
import { type GtpBridge, runGtpBridge } from "../../../src/services/go/gtp-bridge.js";
import {
  ColorChoice,
  type Game,
  type GameEvent,
  GameEvent_Which,
  GameListener,
  type GameListener_event_Params,
  MoveOutcome_Which,
  MoveRecord_Which,
  Phase,
} from "../../../src/wire/gen/go.js";
import { kdf } from "../../login/harness.js";
import { type GoWorld, makeGo, NINE, PLAYER_KEYRING } from "./go-harness.js";

const GNUGO = findGnuGo();
const REPO = path.resolve(import.meta.dirname, "..", "..", "..");
const FAKE = path.join(import.meta.dirname, "fixtures", "fake-engine.mjs");

let world: GoWorld | undefined;
let bridge: GtpBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
  await world?.h.close();
  world = undefined;
});

/** A bot user with the player keyring and an API key for it; the password login is closed. */
async function botKey(w: GoWorld, name: string): Promise<string> {
  await w.h.addUser(name, `${name} pass`, PLAYER_KEYRING);
  const { identity, client } = await w.h.login(name, `${name} pass`);
  const { secret } = await identity.createApiKey({
    description: "gtp bot",
    keyring: PLAYER_KEYRING,
    expiresAt: 0n,
  });
  client.close();
  return secret;
}

async function startBridge(w: GoWorld, name: string, command: string, args: string[]): Promise<GtpBridge> {
  const apiKey = await botKey(w, name);
  bridge = await runGtpBridge({
    connect: async () => {
      const { client, root } = w.h.connect();
      return { root, close: () => client.close(), onClose: (l) => client.onClose(l) };
    },
    apiKey,
    command,
    args,
    clock: w.h.clock,
    log: () => {},
  });
  return bridge;
}

/** Resolves with the next event on `game` that `pred` accepts. */
function nextEvent(game: Game, pred: (e: GameEvent) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const listener = GameListener.server({
      event({ event }: GameListener_event_Params) {
        if (pred(event)) resolve();
      },
    });
    void game.listen({ listener });
  });
}

/** Resolves with the next `moved` event of `color` (0 black, 1 white) on `game`. */
async function nextMove(game: Game, color: number): Promise<{ pass: boolean; x: number; y: number }> {
  return new Promise((resolve) => {
    const listener = GameListener.server({
      event({ event }: GameListener_event_Params) {
        if (event.which() !== GameEvent_Which.MOVED || event.moved.color !== color) return;
        const m = event.moved;
        resolve(
          m.which() === MoveRecord_Which.PASS
            ? { pass: true, x: -1, y: -1 }
            : { pass: false, x: m.play.x, y: m.play.y },
        );
      },
    });
    void game.listen({ listener });
  });
}

describe("the GTP bridge", () => {
  it.skipIf(GNUGO === undefined)(
    "accepts a challenge addressed to the bot and answers alice's move with GNU Go's legal move (needs gnugo, skipped without it)",
    async () => {
      world = await makeGo();
      const b = await startBridge(world, "gnubot", GNUGO as string, ["--mode", "gtp", "--level", "1"]);
      expect(b.name).toBe("gnubot");
      const alice = await world.user("alice");
      const { challenge } = await alice.player.challenge({ terms: { ...NINE, opponent: "gnubot" } });
      await b.poll();
      const { game } = await challenge.accepted();
      const { info } = await game.info();
      expect([info.black, info.white]).toEqual(["alice", "gnubot"]);
      expect(b.games.has(info.id)).toBe(true);

      const reply = nextMove(game, 1);
      const played = await game.move({ point: { x: 4, y: 4 } });
      expect(played.outcome.which()).toBe(MoveOutcome_Which.PLAYED);
      const white = await reply;
      expect(white.pass).toBe(false);
      expect(white).not.toMatchObject({ x: 4, y: 4 });
      const { board } = await game.board();
      expect(board.points[white.y * 9 + white.x]).toBe(2);
      expect(board.moveCount).toBe(2);
      expect((await game.info()).info.toMove).toBe(0);

      await b.idle(info.id);
      const engine = b.engineOf(info.id);
      expect(engine?.alive).toBe(true);
      await game.resign();
      await b.poll();
      expect(b.games.has(info.id)).toBe(false);
      // The game's engine was stopped and reaped.
      await engine?.exited;
      expect(engine?.alive).toBe(false);
      alice.close();
    },
  );

  it.skipIf(GNUGO === undefined)(
    "as white in a fixed-handicap game moves first, its engine holding the handicap stones (needs gnugo, skipped without it)",
    async () => {
      world = await makeGo();
      const b = await startBridge(world, "gnubot", GNUGO as string, ["--mode", "gtp", "--level", "1"]);
      const alice = await world.user("alice");
      const terms = { ...NINE, rules: { size: 9, komi: 0.5, handicap: 2 }, opponent: "gnubot" };
      const { challenge } = await alice.player.challenge({ terms });
      await b.poll();
      const { game } = await challenge.accepted();
      const { info } = await game.info();
      await b.idle(info.id);
      const [first] = (await game.moves({ from: 0, count: 10 })).moves.toArray();
      expect(first?.color).toBe(1);
      expect(first?.which()).toBe(MoveRecord_Which.PLAY);
      const key = (p: { x: number; y: number }) => p.y * 9 + p.x;
      const black = (await b.engineOf(info.id)?.listStones("black"))?.sort((p, q) => key(p) - key(q));
      expect(black).toEqual(fixedHandicapPoints(9, 2).sort((p, q) => key(p) - key(q)));
      alice.close();
    },
  );

  it.skipIf(GNUGO === undefined)(
    "as black in a free-handicap game places the stones its engine chooses, then answers white (needs gnugo, skipped without it)",
    async () => {
      world = await makeGo();
      const b = await startBridge(world, "gnubot", GNUGO as string, ["--mode", "gtp", "--level", "1"]);
      const alice = await world.user("alice");
      const terms = {
        ...NINE,
        rules: { size: 9, komi: 0.5, handicap: 3, freeHandicap: true },
        color: ColorChoice.WHITE,
        opponent: "gnubot",
      };
      const { challenge } = await alice.player.challenge({ terms });
      await b.poll();
      const { game } = await challenge.accepted();
      const { info } = await game.info();
      await b.idle(info.id);
      const { board } = await game.board();
      expect([...board.points].filter((v) => v === 1)).toHaveLength(3);
      const reply = nextMove(game, 0);
      const empty = [...board.points].indexOf(0);
      const played = await game.move({ point: { x: empty % 9, y: Math.floor(empty / 9) } });
      expect(played.outcome.which()).toBe(MoveOutcome_Which.PLAYED);
      expect((await reply).pass).toBe(false);
      expect((await game.board()).board.moveCount).toBe(2);
      alice.close();
    },
  );

  it("ignores challenges addressed to someone else and open ones", async () => {
    world = await makeGo();
    const b = await startBridge(world, "bot", process.execPath, [FAKE, "ok"]);
    const alice = await world.user("alice");
    await world.user("carol");
    await alice.player.challenge({ terms: { ...NINE, opponent: "carol" } });
    await alice.player.challenge({ terms: NINE });
    await b.poll();
    expect(b.games.size).toBe(0);
    expect((await alice.player.openChallenges()).challenges.getLength()).toBe(2);
    alice.close();
  });

  it("passes when the server refuses the engine's move", async () => {
    world = await makeGo();
    // The engine always answers C3, i.e. {x: 2, y: 6} on 9×9, where alice plays first.
    const b = await startBridge(world, "stubborn", process.execPath, [FAKE, "fixed", "C3"]);
    const alice = await world.user("alice");
    const { challenge } = await alice.player.challenge({ terms: { ...NINE, opponent: "stubborn" } });
    await b.poll();
    const { game } = await challenge.accepted();
    const reply = nextMove(game, 1);
    await game.move({ point: { x: 2, y: 6 } });
    expect(await reply).toEqual({ pass: true, x: -1, y: -1 });
    alice.close();
  });

  it("accepts the score when the marking is its engine's, ending the game, and closes", async () => {
    world = await makeGo();
    const b = await startBridge(world, "fake", process.execPath, [FAKE, "ok"]);
    const alice = await world.user("alice");
    const { challenge } = await alice.player.challenge({ terms: { ...NINE, opponent: "fake" } });
    await b.poll();
    const { game } = await challenge.accepted();
    const reply = nextMove(game, 1);
    const botAccepted = nextEvent(
      game,
      (e) => e.which() === GameEvent_Which.SCORE_ACCEPTED && e.scoreAccepted === 1,
    );
    await game.pass();
    expect((await reply).pass).toBe(true);
    // Two passes: the scoring phase; the fake engine holds nothing dead, so the bot accepts.
    expect((await game.info()).info.phase).toBe(Phase.SCORING);
    await botAccepted;
    const { outcome } = await game.acceptScore();
    expect(outcome.which()).toBe(MoveOutcome_Which.ENDED);
    expect(outcome.ended).toBe("W+6.5");
    await b.close();
    await b.closed;
    alice.close();
  });
});

describe.skipIf(GNUGO === undefined)(
  "parallax gtp (needs gnugo, skipped without it)",
  { timeout: 60_000 },
  () => {
    it("connects GNU Go over WebSocket as the API key's bot, plays alice's challenge, and stops on SIGTERM", async () => {
      const data = mkdtempSync(path.join(tmpdir(), "parallax-gtp-"));
      const server = await startBroker({ port: 0, tcpPort: 0, dataDir: data });
      try {
        for (const n of ["bot", "alice"]) {
          const { verifier } = await makeVerifier(`${n} pass`, { kdf });
          await server.store.createIdentity({ name: n, verifier, keyring: PLAYER_KEYRING });
        }
        const owner = await connect(server.url);
        const { identity } = await loginWithPassword(owner.bootstrap(Root), "bot", "bot pass", { kdf });
        const { secret } = await identity.createApiKey({
          description: "gtp",
          keyring: PLAYER_KEYRING,
          expiresAt: 0n,
        });
        owner.close();

        const child = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            "src/cli.ts",
            "gtp",
            "--url",
            server.url,
            "--poll-ms",
            "100",
            "--",
            "gnugo",
            "--mode",
            "gtp",
            "--level",
            "1",
          ],
          { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PARALLAX_API_KEY: secret } },
        );
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on("data", (d: Buffer) => {
          out += d.toString();
        });
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

        const alice = await connect(server.url);
        const login = await loginWithPassword(alice.bootstrap(Root), "alice", "alice pass", { kdf });
        const player = attach(login.identity, GO_PLAYER);
        const { challenge } = await player.challenge({ terms: { ...NINE, opponent: "bot" } });
        const { game } = await challenge.accepted();
        expect((await game.info()).info.white).toBe("bot");
        const reply = nextMove(game, 1);
        await game.move({ point: { x: 4, y: 4 } });
        const white = await reply;
        expect(white.pass).toBe(false);
        expect((await game.board()).board.points[white.y * 9 + white.x]).toBe(2);

        child.kill("SIGTERM");
        expect(await exited).toBe(0);
        expect(out).toContain(
          "parallax: gtp bridge: logged in as bot; engine /usr/games/gnugo --mode gtp --level 1".replace(
            "/usr/games/gnugo",
            GNUGO as string,
          ),
        );
        expect(out).toContain("parallax: SIGTERM: stopping the engines");
        alice.close();
      } finally {
        await server.close();
        rmSync(data, { recursive: true, force: true });
      }
    });
  },
);
