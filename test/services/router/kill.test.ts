/**
 * Registrations and roster entries die with their session: a backend service runs in a child
 * process (client-child.ts, a RouterClient), registers two procedures and a roster entry, and is
 * SIGKILLed — no goodbye, the operating system closes its socket. The broker must notice on its
 * own: the roster's watcher hears `left` for the child's session, a call to its procedure answers
 * PARALLAX_ERR_NOT_FOUND, a call that was in flight to it fails instead of hanging, and the
 * router keeps nothing of it. Every wait is on an event (the child's output, its exit, the
 * watcher's `left`), never a sleep.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import type { RosterChangeValue } from "../../../src/services/router/router-client.js";
import { rejection } from "../../helpers/errors.js";
import { waitFor, within } from "../../helpers/wait.js";
import { type RouterHarness, routerHarness } from "./client-harness.js";

const root = path.resolve(import.meta.dirname, "../../..");
const child = path.join(import.meta.dirname, "client-child.ts");

let h: RouterHarness | undefined;
let running: ChildProcess | undefined;
afterEach(async () => {
  if (running !== undefined && running.exitCode === null && running.signalCode === null)
    running.kill("SIGKILL");
  running = undefined;
  await h?.close();
  h = undefined;
});

/** Spawns the child service; resolves with its router session once it printed `ready <session>`. */
function startChild(
  url: string,
  user: string,
  password: string,
): Promise<{ proc: ChildProcess; session: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, url, user, password], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    running = proc;
    let out = "";
    let err = "";
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^ready (\d+)$/m.exec(out);
      if (m) resolve({ proc, session: Number(m[1]) });
    });
    proc.on("error", reject);
    proc.on("exit", (code, signal) =>
      reject(new Error(`the child exited early (${code ?? signal}): ${err}`)),
    );
  });
}

function exited(proc: ChildProcess): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.signalCode);
    else proc.on("exit", (_code, signal) => resolve(signal));
  });
}

describe("a SIGKILLed client's registrations and roster entries", () => {
  it("vanish: the watcher hears `left`, calls answer NOT_FOUND, a call in flight fails", async () => {
    h = await routerHarness();
    await h.addUser("service", "service pw", "backend");
    await h.addUser("watcher", "watcher pw");
    const watcher = await h.client("watcher", "watcher pw");
    const changes: RosterChangeValue[] = [];
    const waiting: Array<() => void> = [];
    const watch = await watcher.client.rosterWatch("roster.kill", (c) => {
      changes.push(c);
      for (const w of waiting.splice(0)) w();
    });
    const next = (pick: (c: RosterChangeValue) => boolean): Promise<RosterChangeValue> =>
      new Promise((resolve) => {
        const check = (): void => {
          const found = changes.find(pick);
          if (found !== undefined) resolve(found);
          else waiting.push(check);
        };
        check();
      });
    expect(watch.entries).toEqual([]);

    const { proc, session } = await within(
      startChild(h.server.url, "service", "service pw"),
      20_000,
      "the child starting",
    );
    const joined = await next((c) => c.kind === "joined");
    expect(joined.entry).toMatchObject({
      owner: { authid: "service", role: "backend", session },
      data: { pid: proc.pid },
    });
    expect((await watcher.client.call("svc.kill.echo")).args).toEqual([{ pid: proc.pid }]);
    expect(h.router.procedures.registrationCount()).toBe(2);
    // Its outcome is taken at once (it settles while the test waits for other things).
    const inFlight = watcher.client.call("svc.kill.hang").then(
      () => "answered",
      (err: unknown) => err,
    );
    await waitFor(() => expect(h?.router.procedures.callsInFlight()).toBe(1));

    proc.kill("SIGKILL");
    expect(await exited(proc)).toBe("SIGKILL");
    const left = await within(
      next((c) => c.kind === "left"),
      10_000,
      "the watcher hearing the child's entry leave",
    );
    expect(left.entry.owner.session).toBe(session);
    const failed = await within(inFlight, 10_000, "the call in flight to the dead child");
    expect(failed).toBeInstanceOf(ParallaxError);
    expect([ErrorCode.FAILED, ErrorCode.CANCELED, ErrorCode.DISCONNECTED]).toContain(
      (failed as ParallaxError).code,
    );
    const gone = await rejection(watcher.client.call("svc.kill.echo"));
    expect(gone.code).toBe(ErrorCode.NOT_FOUND);
    expect(await watcher.client.rosterQuery("roster.kill")).toEqual([]);
    expect(watch.entries).toEqual([]);
    expect({
      registrations: h.router.procedures.registrationCount(),
      rosterEntries: h.router.rosters.entryCount,
      callsInFlight: h.router.procedures.callsInFlight(),
    }).toEqual({ registrations: 0, rosterEntries: 0, callsInFlight: 0 });
    // Only the watcher is left attached.
    await waitFor(() => expect(h?.router.attachmentCount).toBe(1));
  }, 30_000);
});
