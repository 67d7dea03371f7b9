/**
 * `npm run bench [-- --json FILE] [--runs N] [--only workload,…] [--no-pin] [--login-store S]`
 *
 * Each workload runs against three servers in separate processes, measured in the same run:
 * Parallax, a raw `ws` echo server (the baseline every ratio is taken against) and Cap'n Web.
 * Client and server are pinned to core 0 with taskset (when present) so the figures are stable;
 * each figure is the median of several client runs.
 *
 * The login workloads run on Parallax only (the others have no login to compare with): its
 * server process also runs the broker (open sign-up) over a fresh SQLite store: `--login-store`
 * `disk` (the default: a temporary folder, `synchronous = FULL` as `npm start` opens it, so each
 * login's audit row is fsynced), `disk-normal` (the same with `synchronous = NORMAL`) or `memory`.
 * The clients sign their users up, and so run argon2id, before anything is measured; the measured
 * logins run no KDF on either side. The wallet workloads run on that broker too (Parallax only:
 * its default keyring holds ("wallet", "owner")); every accepted update is one commit, so with the
 * default disk store, one fsync on the server's event loop.
 *
 * The bank workloads run on that broker too (Parallax only), always on disk with
 * `synchronous = FULL` whatever `--login-store` says: a transfer is acknowledged only once
 * durable. Their ratio is against the `conn-100` echo rate of Parallax measured in the same
 * invocation (measured first, on Parallax alone, when `--only` leaves `conn-100` out). Each run
 * ends with a conservation check; a broken one fails the bench.
 *
 * The fan-out workloads (router-fanout, chat-room-1000) run on that broker too (Parallax only),
 * on disk with `synchronous = FULL` as the bank's do, with their users registered by key
 * (`server.ts --chat`). Each run ends with a delivery check (every subscriber or listener got
 * every event or message exactly once, in order); a broken one fails the bench.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
    "login-store": { type: "string", default: "disk" },
    /** Writes a V8 CPU profile of every server and client process into this folder (`--cpu-prof`). */
    profile: { type: "string" },
  },
});
const runs = Number(values.runs);
const LOGIN_STORES = ["disk", "disk-normal", "memory"];
const loginStore = values["login-store"] as string;
if (!LOGIN_STORES.includes(loginStore)) throw new Error(`--login-store is one of ${LOGIN_STORES.join(", ")}`);
const SYSTEMS = ["parallax", "ws", "capnweb"] as const;
type System = (typeof SYSTEMS)[number];

type Figures = Record<string, number>;

interface Workload {
  readonly name: string;
  /** The figure the median is taken on and the ratio (if any) is about. */
  readonly main: string;
  readonly target: string;
  /** The systems it runs on. Default: all three. */
  readonly systems?: readonly System[];
  /** The ratio shown, from the rows' figures. Default: `main`, parallax / ws. null: none. */
  readonly ratio?: {
    readonly label: string;
    /** `measured`: the rows measured before this one in this invocation, by workload. */
    readonly of: (row: Partial<Record<System, Figures>>, measured: ReadonlyMap<string, Row>) => number;
  } | null;
  /** Runs the server with the login broker too. */
  readonly broker?: boolean;
  /** Registers the bank users and puts the broker's store on disk, `synchronous = FULL`. */
  readonly bank?: boolean;
  /** With `bank`: the server's ledger answers the workload's payments without the store. */
  readonly noLedger?: boolean;
  /** Registers the fan-out users and raises chat's post rate; the store on disk, `synchronous = FULL`. */
  readonly chat?: boolean;
  /** A workload whose figures the ratio needs: measured first (Parallax only) if not asked for. */
  readonly baseline?: string;
}

type Row = Partial<Record<System, Figures>>;

/** transfers/s over the `conn-100` echo calls/s of Parallax, both measured in this invocation. */
const VS_CONN_100 = {
  label: "transfers_per_s / conn-100 parallax calls_per_s",
  of: (row: Row, measured: ReadonlyMap<string, Row>) =>
    (row.parallax?.transfers_per_s ?? Number.NaN) /
    (measured.get("conn-100")?.parallax?.calls_per_s ?? Number.NaN),
};
const WORKLOADS: Workload[] = [
  { name: "echo-1", main: "p50_us", target: "p50 ≤ 1.5× ws" },
  { name: "echo-64", main: "calls_per_s", target: "≥ 0.5× ws" },
  { name: "conn-100", main: "calls_per_s", target: "≥ 0.5× ws" },
  { name: "chain-3", main: "round_trips", target: "≤ 1.2 round trips" },
  { name: "idle-memory", main: "kib_per_conn", target: "≤ 2× ws" },
  // The web pages' bundle (issue 13): the largest page's bytes at load, minified and gzipped, as
  // the broker serves them (src/web-server.ts builds them in this process). Not a speed: a size,
  // held under its budget by test/web/bundle-budget.test.ts.
  {
    name: "web-bundle",
    main: "max_gzipped_kib",
    target: "≤ 125 KiB gzipped per page",
    systems: ["parallax"],
    ratio: null,
  },
  // Complete SCRAM logins per second (16 in flight over 4 connections, 20 users), client KDF done
  // beforehand: an HMAC check, a SQLite lookup and an audit insert per login on the server (which,
  // with the default disk store, fsyncs on the event loop). There is no login in ws or Cap'n Web,
  // so no baseline and no ratio: an absolute figure, reported.
  {
    name: "login-rate",
    main: "logins_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
  },
  // p99 of one-in-flight echo calls (demo `echo`, own connection, own process) while a second
  // client runs login-rate's loops against the same server process, over the p99 of the same echo
  // in the same server process just before, without logins. Every process shares core 0.
  {
    name: "echo-under-logins",
    main: "p99_us",
    target: "≤ 3× idle p99",
    systems: ["parallax"],
    ratio: {
      label: "p99_us under logins / idle",
      of: (row) => (row.parallax?.p99_us ?? Number.NaN) / (row.parallax?.idle_p99_us ?? Number.NaN),
    },
    broker: true,
  },
  // Accepted wallet updates per second: 50 users, each signed up on its own connection and looping
  // `update` (sequence + 1, a 1 KiB opaque wallet, one in flight per user) for 4 s after 1 s of
  // warm-up. Each update is an IMMEDIATE transaction (epoch check, sequence check, upsert) and,
  // with the default disk store, one fsync: the figure is bounded by the disk's fsync rate, not
  // by RPC. No wallet in ws or Cap'n Web: an absolute figure, reported.
  {
    name: "wallet-updates",
    main: "updates_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
  },
  // Commit → notification: one user, a writer connection and 100 attachments of the same wallet
  // (10 connections × 10), each with a WalletWatcher, all in one client process (one clock). 200
  // sequential updates after 20 of warm-up, the next sent once all 100 watchers heard the last.
  // p50/p99 over every (update × watcher) delivery of receive − send (so the commit's fsync is
  // in it); last_p99: the last watcher of each update; after_resolve: last watcher − the moment
  // the writer's `update` resolved (negative when every watcher heard before the writer did).
  // Absolute figures in µs, reported.
  {
    name: "wallet-notify",
    main: "p99_us",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
  },
  // Durable transfers per second: 100 customers, each logged in by key on its own connection with
  // an account of its own, paying 1 to the next one's account in a ring, one transfer in flight
  // each, for 4 s after 3 s of warm-up; p50/p99 in ms. Every transfer is fsynced before it is
  // acknowledged; the store groups the transfers of many connections into one transaction per
  // fsync (per_commit: transfers per transaction in the measured window). Each run ends with the
  // participants' balances checked against what they sent and received, and the ledger's totals
  // (every currency sums to 0): anything else fails the bench.
  {
    name: "bank-transfers",
    main: "transfers_per_s",
    target: "≥ 0.5× conn-100",
    systems: ["parallax"],
    ratio: VS_CONN_100,
    broker: true,
    bank: true,
    baseline: "conn-100",
  },
  // The same 100 payers all paying one merchant's account: every transfer writes the same row.
  // The merchant's balance must equal the number of transfers applied.
  {
    name: "bank-hot-account",
    main: "transfers_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: VS_CONN_100,
    broker: true,
    bank: true,
    baseline: "conn-100",
  },
  // Go: 20 concurrent 19×19 games, 40 players and 40 spectators over 48 connections; the side to
  // move plays a random empty point, one move in flight per game, for 4 s after 1 s of warm-up.
  // Every move is one durable commit (FULL) and one event to each listener. Figures: moves/s, and
  // the spectators' receipt − the mover's send, p50/p99 in ms. Absolute, reported.
  {
    name: "go-games",
    main: "moves_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
  },
  // bank-transfers with the store taken out: the server's ledger answers each 1-unit payment
  // `applied` at once (no SQLite, no fsync), so this is the same path (a key login's customer
  // facet, a Transfer in, an outcome out, the service's checks and its change event) without the
  // ledger. Its ratio is bank-transfers over this row, when both ran in this invocation: the
  // share of the storeless rate that the durable ledger keeps. No conservation to check (nothing
  // moves); every answer must still be `applied`.
  {
    name: "bank-no-ledger",
    main: "transfers_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: {
      label: "bank-transfers transfers_per_s / this",
      of: (row, measured) =>
        (measured.get("bank-transfers")?.parallax?.transfers_per_s ?? Number.NaN) /
        (row.parallax?.transfers_per_s ?? Number.NaN),
    },
    broker: true,
    bank: true,
    noLedger: true,
  },
  // Router pub/sub fan-out: 1 000 router sessions (20 users logged in by key, one connection
  // each, 50 sessions per login) each subscribed to one topic (exact match), all in one client
  // process (one clock), every handler answering at once; one publisher session on its own
  // connection publishes events whose kwargs carry their send time, at most 4 in flight (an event
  // is in flight from its publish until all 1 000 subscribers heard it), 50 events of warm-up,
  // then 300 measured. Figures: deliveries_per_s (measured events × subscribers / seconds from
  // the first measured send to the last receipt), publishes_per_s, and publish send → each
  // handler's receipt, p50/p99 in ms. Every subscriber must hear every event exactly once and in
  // order (kwargs' count and the router's seq), or the bench fails. Absolute, reported.
  {
    name: "router-fanout",
    main: "deliveries_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
    chat: true,
  },
  // Chat: one public room with 1 000 members (1 000 users logged in by key, 25 per connection
  // over 40 connections, since a connection takes at most 32 logins), each member's device with a
  // RoomListener given in JoinOptions, all in one client process. The members join first without
  // a listener, then join again with one, resuming after the last `joined` message (so setup is
  // not 1 000 × 1 000 join notices). 10 members on different connections post in a loop, one
  // post in flight each, the text carrying its send time: 10 posts each of warm-up, then 30 each
  // measured. Every post is durable (group-committed, fsynced, `synchronous = FULL`) before any
  // listener hears it. The bench server raises chat's flood limit from 10 to 10 000 posts a second
  // per member and room (`server.ts --chat`), so the posters are bounded by the server. Figures:
  // posts_per_s, deliveries_per_s (measured posts × 1 000 listeners / seconds to the last
  // receipt), post send → listener receipt p50/p99 in ms. Every listener must hear every message
  // once, in sequence order, with no gap (Message.seq contiguous), or the bench fails.
  {
    name: "chat-room-1000",
    main: "deliveries_per_s",
    target: "reported",
    systems: ["parallax"],
    ratio: null,
    broker: true,
    chat: true,
  },
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
  const prof = values.profile !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [];
  const argv = [process.execPath, "--expose-gc", ...prof, "--import", "tsx", ...args];
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

type ServerKind = Pick<Workload, "broker" | "bank" | "noLedger" | "chat">;

async function startServer(system: System, kind: ServerKind = {}) {
  const withBroker = kind.broker === true;
  const withBank = kind.bank === true;
  const durable = withBank || kind.chat === true;
  const dir = withBroker ? mkdtempSync(path.join(tmpdir(), "parallax-bench-")) : undefined;
  const store = loginStore === "memory" && !durable ? ":memory:" : path.join(dir ?? "", "parallax.db");
  const sync = loginStore === "disk-normal" && !durable ? "NORMAL" : "FULL";
  const child = node([
    path.join(here, "server.ts"),
    system,
    ...(withBroker ? ["--broker", store, sync] : []),
    ...(withBank ? ["--bank"] : []),
    ...(withBank && kind.noLedger === true ? ["--no-ledger"] : []),
    ...(withBroker && kind.chat === true ? ["--chat"] : []),
  ]);
  const out = lines(child);
  const ready = await nextLine(out, "ready ").catch((err: unknown) => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const [, port, brokerPort] = ready.split(" ").map(Number);
  return {
    port: port as number,
    brokerPort,
    async mem(): Promise<number> {
      child.stdin.write("mem\n");
      return Number((await nextLine(out, "mem ")).split(" ")[1]);
    },
    /** The bank store's group-commit counters so far. */
    async bankStats(): Promise<{ transactions: number; requests: number; largest: number }> {
      child.stdin.write("bankstats\n");
      const [, transactions, requests, largest] = (await nextLine(out, "bankstats ")).split(" ").map(Number);
      return { transactions: transactions ?? 0, requests: requests ?? 0, largest: largest ?? 0 };
    },
    stop(): Promise<void> {
      return new Promise((r) => {
        child.once("exit", () => {
          if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
          r();
        });
        // A profiled server must exit by itself to write its profile.
        if (values.profile !== undefined) child.stdin.write("exit\n");
        else child.kill("SIGKILL");
      });
    },
  };
}

type Server = Awaited<ReturnType<typeof startServer>>;

function clientArgs(system: System, workload: string, server: Server): string[] {
  const ports = [server.port, ...(server.brokerPort === undefined ? [] : [server.brokerPort])];
  return [path.join(here, "client.ts"), system, workload, ...ports.map(String)];
}

async function runClient(system: System, workload: string, server: Server): Promise<Figures> {
  const out = lines(node(clientArgs(system, workload, server)));
  const line = await nextLine(out, "{");
  return JSON.parse(line) as Figures;
}

/**
 * One bank run: the client's figures, plus what the store's group commit did in the measured
 * window (transfers per transaction, transactions — so fsyncs — per second).
 */
async function runBankClient(workload: string, server: Server): Promise<Figures> {
  const child = node(clientArgs("parallax", workload, server));
  const out = lines(child);
  await nextLine(out, "window");
  const before = await server.bankStats();
  child.stdin.write("go\n");
  await nextLine(out, "window");
  const after = await server.bankStats();
  child.stdin.write("go\n");
  const figures = JSON.parse(await nextLine(out, "{")) as Figures;
  const transactions = after.transactions - before.transactions;
  const requests = after.requests - before.requests;
  return {
    ...figures,
    per_commit: Math.round((requests / transactions) * 10) / 10,
    commits_per_s: Math.round(transactions / (figures.seconds ?? Number.NaN)),
    largest_commit: after.largest,
  };
}

/** One echo-under-logins run: the echo probe alone, then again while a second client logs in. */
async function echoUnderLogins(server: Server): Promise<Figures> {
  const idle = await runClient("parallax", "echo-probe", server);
  const load = node(clientArgs("parallax", "login-load", server));
  const out = lines(load);
  await nextLine(out, "started");
  const busy = await runClient("parallax", "echo-probe", server);
  load.stdin.write("stop\n");
  const logins = JSON.parse(await nextLine(out, "{")) as Figures;
  return {
    p50_us: busy.p50_us ?? Number.NaN,
    p99_us: busy.p99_us ?? Number.NaN,
    idle_p50_us: idle.p50_us ?? Number.NaN,
    idle_p99_us: idle.p99_us ?? Number.NaN,
    logins_per_s: logins.logins_per_s ?? Number.NaN,
  };
}

async function idleMemory(system: System): Promise<Record<string, number>> {
  const server = await startServer(system);
  try {
    const before = await server.mem();
    const child = node(clientArgs(system, "idle-memory", server));
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
  if (w.name === "web-bundle") {
    const { webBundle } = await import("../../src/web-server.js");
    const { sizes } = await webBundle();
    const kib = (n: number) => Math.round((n / 1024) * 10) / 10;
    return {
      max_gzipped_kib: kib(Math.max(...sizes.map((x) => x.gzippedBytes))),
      max_minified_kib: kib(Math.max(...sizes.map((x) => x.minifiedBytes))),
      pages: sizes.length,
    };
  }
  if (w.name === "idle-memory") {
    const rs = [];
    for (let i = 0; i < Math.max(1, Math.min(runs, 3)); i++) rs.push(await idleMemory(system));
    return median(rs, w.main);
  }
  const server = await startServer(system, w);
  try {
    const rs = [];
    for (let i = 0; i < runs; i++) {
      rs.push(
        w.name === "echo-under-logins"
          ? await echoUnderLogins(server)
          : w.bank
            ? await runBankClient(w.name, server)
            : await runClient(system, w.name, server),
      );
    }
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
    `parallax bench — ${new Date().toISOString()} — node ${process.version}, pinned to core 0: ${pinned}` +
      `, login store: ${loginStore}\n`,
  );
  const pad = Math.max(...WORKLOADS.map((w) => w.name.length));
  const measured = new Map<string, Row>();
  for (const w of WORKLOADS) {
    if (only !== undefined && !only.includes(w.name)) continue;
    const base = WORKLOADS.find((b) => b.name === w.baseline);
    if (base !== undefined && !measured.has(base.name)) {
      const parallax = await measure(base, "parallax");
      measured.set(base.name, { parallax });
      process.stdout.write(
        `${base.name.padEnd(pad)} parallax: ${fmt(parallax)}   (the baseline of ${w.name})\n`,
      );
    }
    const figures: Partial<Record<System, Figures>> = {};
    for (const s of w.systems ?? SYSTEMS) figures[s] = await measure(w, s);
    measured.set(w.name, figures);
    const ratio =
      w.ratio === undefined
        ? {
            label: `${w.main}, parallax/ws`,
            of: (f: Row) =>
              w.name === "chain-3"
                ? (f.parallax?.[w.main] ?? Number.NaN)
                : (f.parallax?.[w.main] ?? Number.NaN) / (f.ws?.[w.main] ?? Number.NaN),
          }
        : w.ratio;
    const value = ratio === null ? null : Math.round(ratio.of(figures, measured) * 100) / 100;
    rows.push({ workload: w.name, ...figures, ratio: value, target: w.target });
    const [first, ...rest] = SYSTEMS.map((s) => `${`${s}:`.padEnd(10)}${fmt(figures[s])}`);
    const ratioText = ratio === null ? "ratio: —" : `ratio (${ratio.label}): ${value}`;
    process.stdout.write(
      `${w.name.padEnd(pad)} ${first}\n${rest.map((l) => `${"".padEnd(pad)} ${l}\n`).join("")}` +
        `${"".padEnd(pad)} ${ratioText}   target: ${w.target}\n`,
    );
  }
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ rows }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
