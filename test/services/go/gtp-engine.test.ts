import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type ParallaxError } from "../../../src/errors.js";
import { findGnuGo, GtpEngine } from "../../../src/services/go/gtp-engine.js";
import { GtpPlayer } from "../../../src/services/go/gtp-player.js";
import { fixedHandicapPoints } from "../../../src/services/go/handicap.js";

const GNUGO = findGnuGo();
const FAKE = path.join(import.meta.dirname, "fixtures", "fake-engine.mjs");
const gnugoOptions = (extra: object = {}) => ({
  command: GNUGO as string,
  args: ["--mode", "gtp", "--level", "1"],
  ...extra,
});

const started: GtpEngine[] = [];
async function start(options: Parameters<typeof GtpEngine.start>[0]): Promise<GtpEngine> {
  const e = await GtpEngine.start(options);
  started.push(e);
  return e;
}
const fake = (mode: string, extra: object = {}) =>
  start({ command: process.execPath, args: [FAKE, mode], ...extra });

async function rejection(p: Promise<unknown>): Promise<ParallaxError> {
  try {
    await p;
  } catch (err) {
    return err as ParallaxError;
  }
  throw new Error("expected a rejection");
}

/** Throws ESRCH once the process is gone and reaped (a zombie still answers signal 0). */
function reaped(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.close()));
});

describe("a misbehaving engine", () => {
  it("that answers with garbage fails the command with FAILED and is killed and reaped", async () => {
    const e = await fake("garbage");
    expect(await e.name()).toBe("fake");
    const err = await rejection(e.genmove("black"));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toMatch(/answered "genmove black" with "hello, I am not GTP.*not a GTP response/);
    await e.exited;
    expect(e.alive).toBe(false);
    expect(reaped(e.pid)).toBe(true);
    const after = await rejection(e.name());
    expect(after.code).toBe(ErrorCode.DISCONNECTED);
    expect(after.message).toMatch(/is not running \(gtp: .*not a GTP response/);
  });

  it("that never answers times out with LIMIT (overloaded) and is stopped", async () => {
    const e = await fake("silent", { timeoutMs: 100 });
    const err = await rejection(e.genmove("white"));
    expect(err.code).toBe(ErrorCode.LIMIT);
    expect(err.kind).toBe("overloaded");
    expect(err.message).toMatch(/did not answer "genmove white" within 100 ms; it was stopped/);
    await e.exited;
    expect(reaped(e.pid)).toBe(true);
  });

  it("that floods a megabyte fails with FAILED past maxResponseBytes and is killed", async () => {
    const e = await fake("flood", { maxResponseBytes: 4096 });
    const err = await rejection(e.genmove("black"));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toMatch(/with more than 4096 bytes; it was stopped/);
    await e.exited;
    expect(reaped(e.pid)).toBe(true);
  });

  it("that exits fails the pending command with DISCONNECTED, its exit code and stderr", async () => {
    const e = await fake("exit");
    const err = await rejection(e.genmove("black"));
    expect(err.code).toBe(ErrorCode.DISCONNECTED);
    expect(err.message).toMatch(/exited with code 3; its stderr ended: fake engine: out of cheese/);
    expect(reaped(e.pid)).toBe(true);
  });

  it("that echoes another command's id is a protocol violation", async () => {
    const e = await fake("wrong-id");
    const err = await rejection(e.genmove("black"));
    expect(err.code).toBe(ErrorCode.FAILED);
    expect(err.message).toMatch(/answered command \d+ \("genmove black"\) with the id \d+/);
  });

  it("that writes output nobody asked for is stopped, and the answer before it stands", async () => {
    const e = await fake("chatty");
    expect(await e.genmove("black")).toEqual({ kind: "play", point: { x: 2, y: 16 } });
    await e.exited;
    expect(e.stopReason?.message).toMatch(/sent output nobody asked for: "by the way/);
  });

  it("has its output preprocessed: CR dropped, tabs made spaces", async () => {
    const e = await fake("crlf");
    expect(await e.name()).toBe("fake");
    await e.boardsize(9);
    expect(await e.genmove("black")).toEqual({ kind: "play", point: { x: 2, y: 6 } });
  });

  it("that cannot be started fails with DISCONNECTED naming the program", async () => {
    const err = await rejection(GtpEngine.start({ command: "/nonexistent/engine" }));
    expect(err.code).toBe(ErrorCode.DISCONNECTED);
    expect(err.message).toMatch(/cannot start "\/nonexistent\/engine": spawn \/nonexistent\/engine ENOENT/);
  });

  it("is killed and reaped by close(), with its pending command failed", async () => {
    const e = await fake("silent");
    const pending = rejection(e.genmove("black"));
    await e.close();
    expect((await pending).code).toBe(ErrorCode.DISCONNECTED);
    expect(reaped(e.pid)).toBe(true);
  });
});

describe("commands sent", () => {
  it.each([
    ["a newline", "name\nquit"],
    ["a CR", "name\rquit"],
    ["a tab", "play\tblack D4"],
    ["a NUL", "name\u0000"],
    ["a comment sign", "play black D4 # x"],
    ["non-ASCII text", "play black Ð4"],
    ["nothing", "   "],
  ])("are refused with BAD_ARGUMENT when they hold %s, and nothing is written", async (_what, command) => {
    const e = await fake("ok");
    const err = await rejection(e.send(command));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(e.alive).toBe(true);
    expect(await e.name()).toBe("fake");
  });

  it("are serialized: many at once are answered in order", async () => {
    const e = await fake("ok");
    const answers = await Promise.all([e.name(), e.send("x"), e.name(), e.genmove("black")]);
    expect(answers).toEqual(["fake", "", "fake", { kind: "pass" }]);
  });

  it("refuse points off the board with BAD_ARGUMENT", async () => {
    const e = await fake("ok");
    await e.boardsize(9);
    const err = await rejection(e.play("black", { x: 9, y: 0 }));
    expect(err.code).toBe(ErrorCode.BAD_ARGUMENT);
    expect(err.message).toMatch(/\(9, 0\) is not a point on a 9×9 board/);
  });
});

describe.skipIf(GNUGO === undefined)("GNU Go over GTP (skipped: gnugo is not installed)", () => {
  it("answers protocol_version 2, its name, and round trips play / list_stones in our orientation", async () => {
    const e = await start(gnugoOptions());
    expect(await e.protocolVersion()).toBe("2");
    expect(await e.name()).toBe("GNU Go");
    await e.boardsize(9);
    await e.clearBoard();
    await e.komi(6.5);
    // {x: 3, y: 5} on 9×9 is D4 (rows count from the bottom in GTP, from the top here).
    expect(e.vertex({ x: 3, y: 5 })).toBe("D4");
    expect(e.vertex({ x: 8, y: 0 })).toBe("J9");
    await e.play("black", { x: 3, y: 5 });
    await e.play("white", { x: 8, y: 0 });
    await e.play("black", "pass");
    expect(await e.listStones("black")).toEqual([{ x: 3, y: 5 }]);
    expect(await e.listStones("white")).toEqual([{ x: 8, y: 0 }]);
  });

  it("genmove answers a legal vertex, which the engine then holds", async () => {
    const e = await start(gnugoOptions());
    await e.boardsize(9);
    await e.clearBoard();
    await e.play("black", { x: 4, y: 4 });
    const m = await e.genmove("white");
    expect(m.kind).toBe("play");
    if (m.kind !== "play") return;
    expect(m.point).not.toEqual({ x: 4, y: 4 });
    expect(m.point.x).toBeGreaterThanOrEqual(0);
    expect(m.point.x).toBeLessThan(9);
    expect(await e.listStones("white")).toEqual([m.point]);
  });

  it("relays the engine's ? answers as FAILED with its message, and lives on", async () => {
    const e = await start(gnugoOptions());
    await e.boardsize(9);
    await e.clearBoard();
    await e.play("black", { x: 4, y: 4 });
    const occupied = await rejection(e.play("white", { x: 4, y: 4 }));
    expect(occupied.code).toBe(ErrorCode.FAILED);
    expect(occupied.message).toMatch(/refused "play white E5": illegal move$/);
    const unknown = await rejection(e.send("no_such_command"));
    expect(unknown.message).toMatch(/refused "no_such_command": unknown command$/);
    const size = await rejection(e.send("boardsize 99"));
    expect(size.message).toMatch(/unacceptable size$/);
    expect(e.alive).toBe(true);
    expect(await e.listStones("black")).toEqual([{ x: 4, y: 4 }]);
  });

  it("places fixed handicap stones where fixedHandicapPoints does, for 2 to 9 stones", async () => {
    const e = await start(gnugoOptions());
    const key = (p: { x: number; y: number }) => p.y * 19 + p.x;
    for (let n = 2; n <= 9; n++) {
      await e.boardsize(19);
      await e.clearBoard();
      const placed = (await e.fixedHandicap(n)).sort((a, b) => key(a) - key(b));
      expect(placed).toEqual(fixedHandicapPoints(19, n).sort((a, b) => key(a) - key(b)));
    }
  });

  it("quits on quit() and is reaped", async () => {
    const e = await start(gnugoOptions());
    await e.quit();
    expect(reaped(e.pid)).toBe(true);
  });
});

describe.skipIf(GNUGO === undefined)("GtpPlayer on GNU Go (skipped: gnugo is not installed)", () => {
  it("keeps the engine in sync and, after a SIGKILL mid-game, restarts it and replays the history", async () => {
    const player = new GtpPlayer({ ...gnugoOptions(), size: 9, komi: 6.5 });
    try {
      const setup = [
        { x: 2, y: 6 },
        { x: 6, y: 2 },
      ];
      const moves: { color: "black" | "white"; point: { x: number; y: number } | "pass" }[] = [];
      for (let i = 0; i < 6; i++) {
        const color = i % 2 === 0 ? "white" : "black";
        const m = await player.genmove(color, { setup, moves });
        expect(m.kind).toBe("play");
        moves.push({ color, point: m.kind === "play" ? m.point : "pass" });
      }
      moves.push({ color: "white", point: "pass" });
      const before = player.engine as GtpEngine;
      process.kill(before.pid, "SIGKILL");
      await before.exited;

      const m = await player.genmove("black", { setup, moves });
      expect(m.kind).not.toBe("resign");
      expect(player.restarts).toBe(1);
      const after = player.engine as GtpEngine;
      expect(after.pid).not.toBe(before.pid);
      expect(reaped(before.pid)).toBe(true);
      if (m.kind === "play") moves.push({ color: "black", point: m.point });
      const key = (p: { x: number; y: number }) => p.y * 9 + p.x;
      const sorted = (ps: { x: number; y: number }[]) => [...ps].sort((a, b) => key(a) - key(b));
      const want = (c: "black" | "white") =>
        sorted([
          ...(c === "black" ? setup : []),
          ...moves.flatMap((mv) => (mv.color === c && mv.point !== "pass" ? [mv.point] : [])),
        ]);
      expect(sorted(await after.listStones("black"))).toEqual(want("black"));
      expect(sorted(await after.listStones("white"))).toEqual(want("white"));
    } finally {
      await player.close();
    }
  });

  it("replays from scratch when the history is not a continuation (an undo)", async () => {
    const player = new GtpPlayer({ ...gnugoOptions(), size: 9, komi: 6.5 });
    try {
      await player.genmove("white", { moves: [{ color: "black", point: { x: 4, y: 4 } }] });
      const m = await player.genmove("white", { moves: [{ color: "black", point: { x: 2, y: 2 } }] });
      expect(m.kind).toBe("play");
      const engine = player.engine as GtpEngine;
      expect(await engine.listStones("black")).toEqual([{ x: 2, y: 2 }]);
      expect(player.restarts).toBe(0);
    } finally {
      await player.close();
    }
  });
});

describe("GtpPlayer on an engine that keeps crashing", () => {
  it("gives up with DISCONNECTED after maxRestarts restarts", async () => {
    const player = new GtpPlayer({
      command: process.execPath,
      args: [FAKE, "exit"],
      size: 9,
      komi: 0,
      maxRestarts: 2,
    });
    try {
      const err = await rejection(player.genmove("black", { moves: [] }));
      expect(err.code).toBe(ErrorCode.DISCONNECTED);
      expect(err.message).toMatch(/restarted 2 times in this game; giving up: .*exited with code 3/);
      expect(player.restarts).toBe(2);
    } finally {
      await player.close();
    }
  });
});
