/**
 * A controller for one Go engine subprocess speaking GTP, the Go Text Protocol version 2
 * (Farnebäck's specification, draft 2): `gnugo --mode gtp`, KataGo, Leela Zero, …
 *
 * Invariants:
 * - One command is in flight at a time; `send` queues the others in call order. Each carries a
 *   numeric id, and a response echoing another id is a protocol violation.
 * - What the controller writes is one line of printable ASCII: a command with a control
 *   character (a newline, a CR, a tab, …), a `#` (it would comment out the rest), non-ASCII text
 *   or nothing in it is refused with BAD_ARGUMENT before anything is written, so no caller can
 *   inject a second command.
 * - The engine's output is preprocessed as the specification says (CR and other control
 *   characters but LF dropped, tabs made spaces) and must be responses, `=[id] result` or
 *   `?[id] message`, each ended by an empty line. Output that is not (garbage, output nobody
 *   asked for, a response longer than `maxResponseBytes`) stops the engine: FAILED.
 * - An engine that exits fails its pending command with DISCONNECTED, one that does not answer
 *   within `timeoutMs` is stopped and its command fails with LIMIT (kind overloaded); a `?`
 *   answer fails the command with FAILED and the engine's message, and the engine lives on.
 *   Once stopped, an engine stays stopped: every later command fails with DISCONNECTED.
 * - The child never outlives `close()`: it is killed and `close()` settles only once the
 *   process has exited and been reaped (no zombie).
 *
 * Points are this codebase's `{x, y}` (y from the top); vertices are converted at this boundary
 * with the board size last set by `boardsize` (19 until then).
 *
 * Tests: test/services/go/gtp-engine.test.ts
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import { type Clock, systemClock, type Timer } from "../../clock.js";
import { ErrorCode, ParallaxError } from "../../errors.js";
import { gtpToPoint, isOnBoard, type Point, pointToGtp } from "./go-point.js";
import type { Color } from "./go-rules.js";

export interface GtpEngineOptions {
  /** The program, e.g. the result of `findGnuGo()`. */
  readonly command: string;
  /** Its arguments, e.g. `["--mode", "gtp"]`. */
  readonly args?: readonly string[];
  /** How long one command may take before the engine is stopped. Default 30 s. */
  readonly timeoutMs?: number;
  /** Longest response accepted, in bytes; a longer one stops the engine. Default 64 KiB. */
  readonly maxResponseBytes?: number;
  /** The engine's working directory and environment (default: this process's). */
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Times the command timeout. Default: the system clock. */
  readonly clock?: Clock;
}

export const GTP_DEFAULT_TIMEOUT_MS = 30_000;
export const GTP_DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
/** Bytes of the engine's stderr kept to explain an exit. */
const STDERR_TAIL_BYTES = 2048;

/** What `genmove` answered. */
export type GtpMoveChoice =
  | { readonly kind: "play"; readonly point: Point }
  | { readonly kind: "pass" }
  | { readonly kind: "resign" };

/**
 * Where GNU Go is: the first `gnugo` on `PATH`, else Debian's `/usr/games/gnugo` (root's PATH
 * lacks /usr/games); `undefined` if neither is an executable file.
 */
export function findGnuGo(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = (env.PATH ?? "").split(path.delimiter).filter((d) => d !== "");
  for (const dir of [...dirs, "/usr/games"]) {
    const candidate = path.join(dir, "gnugo");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Throws BAD_ARGUMENT unless `command` is one safe GTP command line (see the header). */
export function checkGtpCommand(command: string): string {
  if (typeof command !== "string" || command.trim() === "")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, "gtp: a command must not be empty");
  for (let i = 0; i < command.length; i++) {
    const c = command.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x23) {
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `gtp: refused to send ${JSON.stringify(command)}: character ${i} (${JSON.stringify(command[i])}) is ${
          c === 0x23 ? "a comment sign" : c > 0x7e ? "not ASCII" : "a control character"
        }; a command is one line of printable ASCII`,
      );
    }
  }
  return command.trim();
}

interface Pending {
  readonly id: number;
  readonly command: string;
  readonly resolve: (text: string) => void;
  readonly reject: (err: ParallaxError) => void;
  readonly timer: Timer;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

export class GtpEngine {
  readonly command: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly #child: Child;
  readonly #clock: Clock;
  readonly #exited: Promise<void>;
  #label: string;
  #buffer = "";
  #stderr = "";
  #nextId = 1;
  #pending: Pending | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Why the engine stopped; set once, never cleared. */
  #stopped: ParallaxError | undefined;
  #size = 19;

  private constructor(options: GtpEngineOptions, child: Child) {
    this.command = options.command;
    this.args = [...(options.args ?? [])];
    this.timeoutMs = options.timeoutMs ?? GTP_DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? GTP_DEFAULT_MAX_RESPONSE_BYTES;
    this.#clock = options.clock ?? systemClock;
    this.#label = `engine ${JSON.stringify(path.basename(options.command))} (pid ${child.pid})`;
    this.#child = child;
    // latin1: one character per byte, so lengths are byte counts; GTP is ASCII.
    child.stdout.setEncoding("latin1");
    child.stdout.on("data", (chunk: string) => this.#onData(chunk));
    child.stderr.setEncoding("latin1");
    child.stderr.on("data", (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    // A write to an engine that died fails with EPIPE; the exit is what gets reported.
    child.stdin.on("error", () => {});
    child.on("error", () => {});
    this.#exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
      const stderr = this.#stderr.trim();
      this.#stop(
        new ParallaxError(
          ErrorCode.DISCONNECTED,
          `gtp: ${this.#label} ${how}${stderr === "" ? "" : `; its stderr ended: ${stderr.slice(-500)}`}`,
        ),
      );
    });
  }

  /** Starts the engine; DISCONNECTED if the program cannot be run. */
  static start(options: GtpEngineOptions): Promise<GtpEngine> {
    const timeoutMs = options.timeoutMs ?? GTP_DEFAULT_TIMEOUT_MS;
    const maxResponseBytes = options.maxResponseBytes ?? GTP_DEFAULT_MAX_RESPONSE_BYTES;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `gtp: timeoutMs must be > 0, got ${timeoutMs}`);
    if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 16)
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `gtp: maxResponseBytes must be an integer ≥ 16, got ${maxResponseBytes}`,
      );
    return new Promise<GtpEngine>((resolve, reject) => {
      const child = spawn(options.command, [...(options.args ?? [])], {
        stdio: ["pipe", "pipe", "pipe"],
        cwd: options.cwd,
        env: options.env,
      });
      child.once("error", (err) => {
        reject(
          new ParallaxError(
            ErrorCode.DISCONNECTED,
            `gtp: cannot start ${JSON.stringify(options.command)}: ${err.message}`,
            { cause: err },
          ),
        );
      });
      child.once("spawn", () => resolve(new GtpEngine(options, child)));
    });
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid as number;
  }

  /** False once the engine stopped (exited, killed, timed out, misbehaved or closed). */
  get alive(): boolean {
    return this.#stopped === undefined;
  }

  /** Why the engine stopped, once it has. */
  get stopReason(): ParallaxError | undefined {
    return this.#stopped;
  }

  /** The board size vertices are converted with (the last `boardsize`). */
  get size(): number {
    return this.#size;
  }

  /** Settles when the process has exited and been reaped. */
  get exited(): Promise<void> {
    return this.#exited;
  }

  /**
   * Sends one command and answers the response's text (after `=` and the id, trimmed). Queued
   * behind the commands before it. Errors: see the header.
   */
  send(command: string): Promise<string> {
    let line: string;
    try {
      line = checkGtpCommand(command);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = (): Promise<string> => this.#dispatch(line);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  #dispatch(line: string): Promise<string> {
    if (this.#stopped !== undefined) return Promise.reject(this.#notRunning());
    const id = this.#nextId++;
    return new Promise<string>((resolve, reject) => {
      const timer = this.#clock.setTimer(this.timeoutMs, () => {
        this.#stop(
          new ParallaxError(
            ErrorCode.LIMIT,
            `gtp: ${this.#label} did not answer ${JSON.stringify(line)} within ${this.timeoutMs} ms; it was stopped`,
          ),
        );
      });
      this.#pending = { id, command: line, resolve, reject, timer };
      this.#child.stdin.write(`${id} ${line}\n`);
    });
  }

  #notRunning(): ParallaxError {
    return new ParallaxError(
      ErrorCode.DISCONNECTED,
      `gtp: ${this.#label} is not running (${this.#stopped?.message ?? "stopped"})`,
    );
  }

  #onData(chunk: string): void {
    if (this.#stopped !== undefined) return;
    // Preprocessing (GTP 2, 3.1): drop CR and every control character but LF and HT; HT → space.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
    this.#buffer += chunk.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "").replace(/\t/g, " ");
    for (;;) {
      this.#buffer = this.#buffer.replace(/^ *\n+/, "");
      if (this.#buffer === "") return;
      const pending = this.#pending;
      if (pending === undefined) {
        this.#malformed(`sent output nobody asked for: ${snippet(this.#buffer)}`);
        return;
      }
      const status = this.#buffer[0];
      if (status !== "=" && status !== "?") {
        this.#malformed(
          `answered ${JSON.stringify(pending.command)} with ${snippet(this.#buffer)}, not a GTP response (= or ?)`,
        );
        return;
      }
      const end = this.#buffer.indexOf("\n\n");
      if (end < 0 ? this.#buffer.length > this.maxResponseBytes : end + 2 > this.maxResponseBytes) {
        this.#stop(
          new ParallaxError(
            ErrorCode.FAILED,
            `gtp: ${this.#label} answered ${JSON.stringify(pending.command)} with more than ${this.maxResponseBytes} bytes; it was stopped`,
          ),
        );
        return;
      }
      if (end < 0) return;
      const response = this.#buffer.slice(1, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const m = /^([0-9]*)(.*)$/s.exec(response) as RegExpExecArray;
      const id = m[1] as string;
      if (id !== "" && Number(id) !== pending.id) {
        this.#malformed(
          `answered command ${pending.id} (${JSON.stringify(pending.command)}) with the id ${id}`,
        );
        return;
      }
      const text = (m[2] as string).trim();
      this.#pending = undefined;
      pending.timer.cancel();
      if (status === "=") pending.resolve(text);
      else
        pending.reject(
          new ParallaxError(
            ErrorCode.FAILED,
            `gtp: ${this.#label} refused ${JSON.stringify(pending.command)}: ${text === "" ? "(no message)" : text}`,
          ),
        );
    }
  }

  #malformed(why: string): void {
    this.#stop(new ParallaxError(ErrorCode.FAILED, `gtp: ${this.#label} ${why}; it was stopped`));
  }

  /** Records why the engine stopped (first reason wins), fails the pending command, kills the child. */
  #stop(reason: ParallaxError): void {
    if (this.#stopped === undefined) this.#stopped = reason;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) {
      pending.timer.cancel();
      pending.reject(reason);
    }
    this.#kill();
  }

  #kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }

  /** Kills the engine (if still running); settles once it exited and was reaped. */
  async close(): Promise<void> {
    this.#stop(new ParallaxError(ErrorCode.DISCONNECTED, `gtp: ${this.#label} was closed`));
    await this.#exited;
  }

  /** Asks the engine to quit (GTP `quit`), then closes it whatever it answered. */
  async quit(): Promise<void> {
    try {
      if (this.alive) await this.send("quit");
    } catch {
      // closing anyway
    } finally {
      await this.close();
    }
  }

  // Typed commands (GTP 2, section 6.3, and GNU Go's list_stones / final_status_list).

  async protocolVersion(): Promise<string> {
    return this.send("protocol_version");
  }

  async name(): Promise<string> {
    return this.send("name");
  }

  async version(): Promise<string> {
    return this.send("version");
  }

  async boardsize(size: number): Promise<void> {
    if (!Number.isInteger(size) || size < 2 || size > 25)
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `gtp: a board size is from 2 to 25, got ${size}`);
    await this.send(`boardsize ${size}`);
    this.#size = size;
  }

  async clearBoard(): Promise<void> {
    await this.send("clear_board");
  }

  async komi(komi: number): Promise<void> {
    if (!Number.isFinite(komi))
      throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `gtp: komi must be a finite number, got ${komi}`);
    await this.send(`komi ${komi}`);
  }

  async play(color: Color, point: Point | "pass"): Promise<void> {
    await this.send(`play ${gtpColor(color)} ${point === "pass" ? "pass" : this.vertex(point)}`);
  }

  async genmove(color: Color): Promise<GtpMoveChoice> {
    const answer = await this.send(`genmove ${gtpColor(color)}`);
    const v = answer.toLowerCase();
    if (v === "pass") return { kind: "pass" };
    if (v === "resign") return { kind: "resign" };
    return { kind: "play", point: this.#point(answer, `genmove ${color}`) };
  }

  /** Places handicap stones on the chosen points (the board must be empty). */
  async setFreeHandicap(points: readonly Point[]): Promise<void> {
    await this.send(`set_free_handicap ${points.map((p) => this.vertex(p)).join(" ")}`);
  }

  /** The engine places `stones` handicap stones on the star points and answers where. */
  async fixedHandicap(stones: number): Promise<Point[]> {
    return this.#points(await this.send(`fixed_handicap ${checkCount(stones)}`), "fixed_handicap");
  }

  /** The engine chooses where to put `stones` handicap stones and answers where. */
  async placeFreeHandicap(stones: number): Promise<Point[]> {
    return this.#points(await this.send(`place_free_handicap ${checkCount(stones)}`), "place_free_handicap");
  }

  /** GNU Go's `list_stones`: the stones of one colour on the engine's board. */
  async listStones(color: Color): Promise<Point[]> {
    return this.#points(await this.send(`list_stones ${gtpColor(color)}`), "list_stones");
  }

  /** `final_status_list dead` (or `alive`, `seki`): the stones the engine considers so. */
  async finalStatusList(status: "dead" | "alive" | "seki"): Promise<Point[]> {
    return this.#points(await this.send(`final_status_list ${status}`), "final_status_list");
  }

  /** `{x, y}` → a vertex on the current board; BAD_ARGUMENT off it. */
  vertex(p: Point): string {
    if (!Number.isInteger(p.x) || !Number.isInteger(p.y) || !isOnBoard(p, this.#size))
      throw new ParallaxError(
        ErrorCode.BAD_ARGUMENT,
        `gtp: (${p.x}, ${p.y}) is not a point on a ${this.#size}×${this.#size} board`,
      );
    return pointToGtp(p, this.#size);
  }

  #point(vertex: string, command: string): Point {
    try {
      const p = gtpToPoint(vertex, this.#size);
      if (p !== undefined) return p;
    } catch {
      // reported below
    }
    throw new ParallaxError(
      ErrorCode.FAILED,
      `gtp: ${this.#label} answered ${command} with ${JSON.stringify(vertex.slice(0, 40))}, not a vertex on a ${this.#size}×${this.#size} board`,
    );
  }

  #points(text: string, command: string): Point[] {
    return text
      .split(/\s+/)
      .filter((v) => v !== "")
      .map((v) => this.#point(v, command));
  }
}

function gtpColor(color: Color): string {
  if (color !== "black" && color !== "white")
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `gtp: a colour is black or white, got ${String(color)}`);
  return color;
}

function checkCount(stones: number): number {
  if (!Number.isInteger(stones) || stones < 2 || stones > 624)
    throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `gtp: a handicap is 2 or more stones, got ${stones}`);
  return stones;
}

function snippet(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}
