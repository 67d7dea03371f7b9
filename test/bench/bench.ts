/**
 * `npm run bench [-- --json FILE] [--runs N] [--only workload,…] [--no-pin]`
 *
 * Each workload runs against three servers in separate processes, measured in the same run:
 * Parallax, a raw `ws` echo server (the baseline every ratio is taken against) and Cap'n Web.
 * Client and server are pinned to core 0 with taskset (when present) so the figures are stable;
 * each figure is the median of several client runs.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const here = import.meta.dirname;
const root = path.resolve(here, "../..");
const { values } = parseArgs({
  options: {
    json: { type: "string" },
    runs: { type: "string", default: "3" },
    only: { type: "string" },
    "no-pin": { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const SYSTEMS = ["parallax", "ws", "capnweb"] as const;
type System = (typeof SYSTEMS)[number];

interface Workload {
  readonly name: string;
  /** The figure the ratio is taken on, and whether bigger is better. */
  readonly main: string;
  readonly target: string;
}
const WORKLOADS: Workload[] = [
  { name: "echo-1", main: "p50_us", target: "p50 ≤ 1.5× ws" },
  { name: "echo-64", main: "calls_per_s", target: "≥ 0.5× ws" },
  { name: "conn-100", main: "calls_per_s", target: "≥ 0.5× ws" },
  { name: "chain-3", main: "round_trips", target: "≤ 1.2 round trips" },
  { name: "idle-memory", main: "kib_per_conn", target: "≤ 2× ws" },
];

const pinned = !values["no-pin"] && hasTaskset();
function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-c", "0", "true"]);
    return true;
  } catch {
    return false;
  }
}

function node(args: string[]): ChildProcessWithoutNullStreams {
  const argv = [process.execPath, "--expose-gc", "--import", "tsx", ...args];
  const [cmd, ...rest] = pinned ? ["taskset", "-c", "0", ...argv] : argv;
  return spawn(cmd as string, rest, { cwd: root, stdio: "pipe" });
}

function lines(child: ChildProcessWithoutNullStreams): AsyncIterableIterator<string> {
  child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
  return createInterface({ input: child.stdout })[Symbol.asyncIterator]();
}

async function nextLine(it: AsyncIterableIterator<string>, prefix: string): Promise<string> {
  for (;;) {
    const { value, done } = await it.next();
    if (done) throw new Error(`process ended before printing "${prefix}"`);
    if (value.startsWith(prefix)) return value;
  }
}

async function startServer(system: System) {
  const child = node([path.join(here, "server.ts"), system]);
  const out = lines(child);
  const port = Number((await nextLine(out, "ready ")).split(" ")[1]);
  return {
    port,
    async mem(): Promise<number> {
      child.stdin.write("mem\n");
      return Number((await nextLine(out, "mem ")).split(" ")[1]);
    },
    stop(): Promise<void> {
      return new Promise((r) => {
        child.once("exit", () => r());
        child.kill("SIGKILL");
      });
    },
  };
}

async function runClient(system: System, workload: string, port: number): Promise<Record<string, number>> {
  const child = node([path.join(here, "client.ts"), system, workload, String(port)]);
  const out = lines(child);
  const line = await nextLine(out, "{");
  return JSON.parse(line) as Record<string, number>;
}

async function idleMemory(system: System): Promise<Record<string, number>> {
  const server = await startServer(system);
  try {
    const before = await server.mem();
    const child = node([path.join(here, "client.ts"), system, "idle-memory", String(server.port)]);
    const out = lines(child);
    await nextLine(out, "opened");
    const after = await server.mem();
    child.stdin.write("close\n");
    await nextLine(out, "{");
    return { kib_per_conn: Math.round(((after - before) / 1000 / 1024) * 10) / 10 };
  } finally {
    await server.stop();
  }
}

function median(results: Array<Record<string, number>>, key: string): Record<string, number> {
  const sorted = [...results].sort((a, b) => (a[key] ?? 0) - (b[key] ?? 0));
  return sorted[Math.floor(sorted.length / 2)] as Record<string, number>;
}

async function measure(w: Workload, system: System): Promise<Record<string, number>> {
  if (w.name === "idle-memory") {
    const rs = [];
    for (let i = 0; i < Math.max(1, Math.min(runs, 3)); i++) rs.push(await idleMemory(system));
    return median(rs, w.main);
  }
  const server = await startServer(system);
  try {
    const rs = [];
    for (let i = 0; i < runs; i++) rs.push(await runClient(system, w.name, server.port));
    return median(rs, w.main);
  } finally {
    await server.stop();
  }
}

function fmt(r: Record<string, number> | undefined): string {
  if (r === undefined) return "—";
  return Object.entries(r)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

async function main(): Promise<void> {
  const only = values.only?.split(",");
  const rows = [];
  process.stdout.write(
    `parallax bench — ${new Date().toISOString()} — node ${process.version}, pinned to core 0: ${pinned}\n`,
  );
  for (const w of WORKLOADS) {
    if (only !== undefined && !only.includes(w.name)) continue;
    const row: Record<string, unknown> = { workload: w.name };
    for (const s of SYSTEMS) row[s] = await measure(w, s);
    const p = (row.parallax as Record<string, number>)[w.main] ?? Number.NaN;
    const b = (row.ws as Record<string, number>)[w.main] ?? Number.NaN;
    row.ratio = w.name === "chain-3" ? p : Math.round((p / b) * 100) / 100;
    row.target = w.target;
    rows.push(row);
    process.stdout.write(
      `${w.name.padEnd(12)} parallax: ${fmt(row.parallax as never)}\n${"".padEnd(12)} ws:       ${fmt(row.ws as never)}\n` +
        `${"".padEnd(12)} capnweb:  ${fmt(row.capnweb as never)}\n${"".padEnd(12)} ratio (${w.main}, parallax/ws): ${row.ratio}   target: ${w.target}\n`,
    );
  }
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ rows }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
