/**
 * A benchmark client process: `tsx test/bench/client.ts <system> <workload> <port> [brokerPort]`.
 * Prints one JSON line with the workload's figures. Every loop is bounded by a call count or,
 * for the login, wallet-updates and bank loops, by a duration. The bank workloads print `window`
 * before and after their measured loop and wait for `go` on stdin each time (bench.ts reads the
 * server's group-commit counters meanwhile). The fan-out workloads (router-fanout, chat-room-1000)
 * are bounded by counts and end by checking every delivery (exactly once, in order, no gap): a
 * broken one fails the client, and so the bench.
 */
import { createServer, connect as netConnect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { newWebSocketRpcSession } from "capnweb";
import WebSocket from "ws";
import { connect } from "../../src/client.js";
import type { RpcConnection } from "../../src/rpc/index.js";
import { authMessage, clientProof, verifyServerSignature } from "../../src/cred/scram.js";
import { randomBytes } from "../../src/cred/secrets.js";
import { loginWithPassword, makeVerifier, signUp } from "../../src/login/client-login.js";
import type { KdfParams } from "../../src/store/index.js";
import { type Identity, Root, SignUpOutcome_Which } from "../../src/wire/gen/broker.js";
import { Demo } from "../../src/wire/gen/demo.js";
import { UpdateOutcome_Which, WalletPerspective, WalletWatcher } from "../../src/wire/gen/wallet.js";
import { loginWithKey } from "../../src/login/client-login.js";
import { Banker, Customer, type PrivateAccount, TransferOutcome_Which } from "../../src/wire/gen/bank.js";
import { newTransferId } from "../../src/services/bank/bank-client.js";
import { BANK_PAYERS, benchKey, MERCHANT, payerName, TELLER } from "./bank-keys.js";
import { GO_PLAYER } from "../../src/services/go/go-keys.js";
import { attach } from "../../src/login/index.js";
import { CHAT_MEMBER } from "../../src/services/chat/chat-keys.js";
import { ROUTER_SESSION } from "../../src/services/router/router-keys.js";
import {
  type ChatMember,
  MessageKind,
  RoomKind,
  RoomListener,
  type RoomMember,
} from "../../src/wire/gen/chat.js";
import { UriMatch } from "../../src/wire/gen/broker.js";
import { EventHandler, type RouterSession, type Subscription } from "../../src/wire/gen/router.js";
import {
  memberName,
  ROOM_MEMBERS,
  ROUTER_PUBLISHER,
  ROUTER_SESSIONS_PER_USER,
  ROUTER_SUBSCRIBER_USERS,
  routerSubscriberName,
} from "./chat-keys.js";
import {
  ColorChoice,
  type Game,
  GameEvent_Which,
  GameListener,
  MoveOutcome_Which,
  type Player,
} from "../../src/wire/gen/go.js";

const [system, workload, portArg, brokerPortArg] = process.argv.slice(2) as [string, string, string, string?];
const serverPort = Number(portArg);
// Cap'n Web looks for a global WebSocket (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;
const PAYLOAD = Uint8Array.from({ length: 100 }, (_, i) => i);

interface BenchClient {
  echo(): Promise<void>;
  chain(): Promise<void>;
  close(): void;
}

async function open(port: number): Promise<BenchClient> {
  const url = `ws://127.0.0.1:${port}/rpc`;
  if (system === "parallax") {
    const conn = await connect(url, { limits: { idleTimeoutMs: 0 } });
    const demo = conn.bootstrap(Demo);
    return {
      async echo() {
        using p = demo.echo({ payload: PAYLOAD });
        await p;
      },
      async chain() {
        using a = demo.newCounter({ start: 0n });
        using b = a.counter.inc();
        using c = b.self.get();
        await c;
      },
      close: () => conn.close(),
    };
  }
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  if (system === "ws") {
    const waiting: Array<() => void> = [];
    ws.on("message", () => waiting.shift()?.());
    const echo = () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        ws.send(PAYLOAD);
      });
    return {
      echo,
      async chain() {
        await echo();
        await echo();
        await echo();
      },
      close: () => ws.close(),
    };
  }
  // biome-ignore lint/suspicious/noExplicitAny: capnweb stubs are untyped proxies here
  const api: any = newWebSocketRpcSession(ws as unknown as globalThis.WebSocket);
  return {
    async echo() {
      await api.echo(PAYLOAD);
    },
    async chain() {
      await api.newCounter().inc().get();
    },
    close: () => ws.close(),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

/** Runs `total` calls spread over `workers` loops, each one call in flight. */
async function drive(clients: BenchClient[], perClient: number, total: number) {
  const latencies: number[] = [];
  let left = total;
  const started = process.hrtime.bigint();
  const loop = async (c: BenchClient) => {
    while (left > 0) {
      left--;
      const t0 = process.hrtime.bigint();
      await c.echo();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: perClient }, () => loop(c))));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    calls_per_s: Math.round(total / seconds),
    p50_us: Math.round(percentile(latencies, 50)),
    p99_us: Math.round(percentile(latencies, 99)),
  };
}

/** A user the login loops log in as: its SaltedPassword was derived once, at sign-up. */
interface LoginUser {
  readonly name: string;
  readonly salt: Uint8Array;
  readonly saltedPassword: Uint8Array;
}

const LOGIN_USERS = 20;
const LOGIN_CONNECTIONS = 4;
const LOGINS_PER_CONNECTION = 4;

/** Signs up `n` users with real argon2id verifiers (the only KDF runs of the workload). */
async function signUpUsers(root: Root, n: number): Promise<LoginUser[]> {
  const users: LoginUser[] = [];
  const tag = Buffer.from(randomBytes(6)).toString("hex");
  for (let i = 0; i < n; i++) {
    const name = `bench-${tag}-${i}`;
    const { verifier, saltedPassword } = await makeVerifier(`password ${tag} ${i}`);
    using p = root.signUp({ username: name, verifier });
    const outcome = (await p).outcome;
    if (outcome.which() !== SignUpOutcome_Which.IDENTITY) throw new Error("sign-up is not open");
    outcome.identity.dispose();
    users.push({ name, salt: verifier.salt, saltedPassword });
  }
  return users;
}

/**
 * One complete SCRAM login without the KDF: login → proof → respond → check the server's
 * signature → dispose the Identity (which ends the session on the server).
 */
async function loginOnce(root: Root, user: LoginUser): Promise<void> {
  const clientNonce = randomBytes(32);
  using p = root.login({ username: user.name, clientNonce });
  const start = await p;
  using challenger = start.challenger;
  const salt = start.salt.slice();
  if (Buffer.compare(salt, user.salt) !== 0) throw new Error(`the server sent another salt for ${user.name}`);
  const k = start.kdf;
  const kdf: KdfParams = {
    algorithm: "argon2id",
    memoryKiB: k.memoryKiB,
    iterations: k.iterations,
    parallelism: k.parallelism,
  };
  const message = authMessage({
    username: user.name,
    clientNonce,
    serverNonce: start.serverNonce.slice(),
    salt,
    kdf,
  });
  using q = challenger.respond({ proof: clientProof(user.saltedPassword, message) });
  const outcome = (await q).outcome;
  const identity = outcome.identity;
  const signed = verifyServerSignature(user.saltedPassword, message, outcome.serverSignature.slice());
  identity.dispose();
  if (!signed) throw new Error("the server's signature is wrong");
}

/** Connections to the broker, with their users signed up; `run` logs in until `stop()` says so. */
async function loginDriver(port: number) {
  const conns = await Promise.all(
    Array.from({ length: LOGIN_CONNECTIONS }, () =>
      connect(`ws://127.0.0.1:${port}/rpc`, { limits: { idleTimeoutMs: 0 } }),
    ),
  );
  const roots = conns.map((c) => c.bootstrap(Root));
  const users = await signUpUsers(roots[0] as Root, LOGIN_USERS);
  let next = 0;
  return {
    /** Logs in from LOGIN_CONNECTIONS × LOGINS_PER_CONNECTION loops until `until()` is true. */
    async run(until: () => boolean) {
      const latencies: number[] = [];
      const started = process.hrtime.bigint();
      const loop = async (root: Root) => {
        while (!until()) {
          const user = users[next++ % users.length] as LoginUser;
          const t0 = process.hrtime.bigint();
          await loginOnce(root, user);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      };
      await Promise.all(roots.flatMap((r) => Array.from({ length: LOGINS_PER_CONNECTION }, () => loop(r))));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      latencies.sort((a, b) => a - b);
      return {
        logins_per_s: Math.round(latencies.length / seconds),
        login_p50_ms: Math.round(percentile(latencies, 50) / 100) / 10,
        login_p99_ms: Math.round(percentile(latencies, 99) / 100) / 10,
      };
    },
    close() {
      for (const r of roots) r.dispose();
      for (const c of conns) c.close();
    },
  };
}

const WALLET_OWNER = { service: "wallet", perspective: "owner" };
const WALLET_USERS = 50;
const NOTIFY_CONNECTIONS = 10;
const WATCHERS_PER_CONNECTION = 10;
const NOTIFY_WARMUP = 20;
const NOTIFY_UPDATES = 200;
/** The opaque wallet every update sends (the server never reads it) and its hmac. */
const WALLET_BLOB = randomBytes(1024);
const WALLET_HMAC = randomBytes(32);

function brokerConnections(n: number) {
  return Promise.all(
    Array.from({ length: n }, () =>
      connect(`ws://127.0.0.1:${brokerPort()}/rpc`, { limits: { idleTimeoutMs: 0 } }),
    ),
  );
}

/** Signs `name` up (argon2id on this side, before anything is measured) and keeps the login. */
async function signUpIdentity(root: Root, name: string, password: string): Promise<Identity> {
  const r = await signUp(root, name, password);
  if (r.identity === undefined) throw new Error("sign-up is not open");
  return r.identity;
}

async function attachWallet(identity: Identity, watcher: WalletWatcher | null): Promise<WalletPerspective> {
  const a = await identity.attach({ ...WALLET_OWNER, client: watcher });
  return a.perspective.castAs(WalletPerspective);
}

/** Sends `sequence` with the 1 KiB blob; fails unless it was accepted. */
async function updateWallet(wallet: WalletPerspective, sequence: number): Promise<void> {
  using p = wallet.update({
    state: { sequence: BigInt(sequence), encryptedWallet: WALLET_BLOB, hmac: WALLET_HMAC },
  });
  const outcome = (await p).outcome;
  if (outcome.which() !== UpdateOutcome_Which.ACCEPTED) throw new Error(`update ${sequence} conflicted`);
}

/**
 * wallet-updates: WALLET_USERS users, each signed up on its own connection with its own wallet,
 * each looping `update` (sequence + 1, one in flight per user) for a fixed duration.
 */
async function walletUpdates() {
  const conns = await brokerConnections(WALLET_USERS);
  const tag = Buffer.from(randomBytes(6)).toString("hex");
  const users = await Promise.all(
    conns.map(async (c, i) => {
      const identity = await signUpIdentity(c.bootstrap(Root), `wallet-${tag}-${i}`, `password ${tag} ${i}`);
      return { wallet: await attachWallet(identity, null), sequence: 0 };
    }),
  );
  const run = async (ms: number) => {
    const end = Date.now() + ms;
    const latencies: number[] = [];
    const started = process.hrtime.bigint();
    await Promise.all(
      users.map(async (u) => {
        while (Date.now() < end) {
          const t0 = process.hrtime.bigint();
          await updateWallet(u.wallet, u.sequence + 1);
          u.sequence++;
          latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    latencies.sort((a, b) => a - b);
    return {
      updates_per_s: Math.round(latencies.length / seconds),
      update_p50_ms: Math.round(percentile(latencies, 50) / 100) / 10,
      update_p99_ms: Math.round(percentile(latencies, 99) / 100) / 10,
    };
  };
  await run(1000);
  const r = await run(4000);
  for (const c of conns) c.close();
  return r;
}

/**
 * wallet-notify: one user; a writer on its own connection and NOTIFY_CONNECTIONS ×
 * WATCHERS_PER_CONNECTION attachments of the same wallet, each with its own WalletWatcher, all in
 * this process (one clock). Updates are sequential: the next one is sent once every watcher heard
 * the last. Per update, t0 is taken right before the update is sent.
 */
async function walletNotify() {
  const [writerConn, ...watchConns] = (await brokerConnections(1 + NOTIFY_CONNECTIONS)) as [
    RpcConnection,
    ...RpcConnection[],
  ];
  const tag = Buffer.from(randomBytes(6)).toString("hex");
  const name = `notify-${tag}`;
  const password = `password ${tag}`;
  const writer = await attachWallet(await signUpIdentity(writerConn.bootstrap(Root), name, password), null);
  const watchers = NOTIFY_CONNECTIONS * WATCHERS_PER_CONNECTION;
  let expected = 0;
  let heard: number[] = [];
  let allHeard: () => void = () => {};
  let failure: string | undefined;
  const fail = (why: string): void => {
    failure ??= why;
    allHeard();
  };
  const watcher = () =>
    WalletWatcher.server({
      walletUpdated(p) {
        const at = performance.now();
        if (Number(p.sequence) !== expected) return fail(`a watcher heard ${p.sequence}, not ${expected}`);
        heard.push(at);
        if (heard.length === watchers) allHeard();
      },
      notificationsDropped(p) {
        fail(`notifications dropped: ${p.reason}`);
      },
      revoked(p) {
        fail(`revoked: ${p.reason}`);
      },
    });
  await Promise.all(
    watchConns.map(async (c) => {
      // A password login per connection (argon2id here, before anything is measured).
      const { identity } = await loginWithPassword(c.bootstrap(Root), name, password);
      for (let i = 0; i < WATCHERS_PER_CONNECTION; i++) await attachWallet(identity, watcher());
    }),
  );
  const deliveries: number[] = [];
  const last: number[] = [];
  const afterResolve: number[] = [];
  const updates: number[] = [];
  for (let s = 1; s <= NOTIFY_WARMUP + NOTIFY_UPDATES; s++) {
    expected = s;
    heard = [];
    const everyone = new Promise<void>((r) => {
      allHeard = r;
    });
    const timer = setTimeout(
      () => fail(`update ${s}: only ${heard.length} of ${watchers} watchers heard it in 10 s`),
      10_000,
    );
    const t0 = performance.now();
    await updateWallet(writer, s);
    const resolved = performance.now();
    await everyone;
    clearTimeout(timer);
    if (failure !== undefined) throw new Error(failure);
    if (s <= NOTIFY_WARMUP) continue;
    const lastHeard = Math.max(...heard);
    for (const t of heard) deliveries.push((t - t0) * 1000);
    last.push((lastHeard - t0) * 1000);
    afterResolve.push((lastHeard - resolved) * 1000);
    updates.push((resolved - t0) * 1000);
  }
  writerConn.close();
  for (const c of watchConns) c.close();
  for (const l of [deliveries, last, afterResolve, updates]) l.sort((a, b) => a - b);
  return {
    p50_us: Math.round(percentile(deliveries, 50)),
    p99_us: Math.round(percentile(deliveries, 99)),
    last_p99_us: Math.round(percentile(last, 99)),
    after_resolve_p50_us: Math.round(percentile(afterResolve, 50)),
    after_resolve_p99_us: Math.round(percentile(afterResolve, 99)),
    update_p50_us: Math.round(percentile(updates, 50)),
  };
}

/** Logs `name` in by its bench key on a new broker connection. */
async function keyLogin(name: string): Promise<{ connection: RpcConnection; identity: Identity }> {
  const connection = await connect(`ws://127.0.0.1:${brokerPort()}/rpc`, { limits: { idleTimeoutMs: 0 } });
  const r = await loginWithKey(connection.bootstrap(Root), name, benchKey(name));
  if (r.identity === undefined)
    throw new Error(`${name}'s key is not registered (start the server with --bank)`);
  return { connection, identity: r.identity };
}

/** Writes `window` and waits for `go` on stdin (bench.ts reads the server's counters meanwhile). */
function window(): Promise<void> {
  process.stdout.write("window\n");
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (l) => {
      if (l.trim() !== "go") return;
      rl.close();
      resolve();
    });
  });
}

const BANK_OPENING = 1_000_000n;
const BANK_WARMUP_MS = 3000;
const BANK_MEASURE_MS = 4000;

/**
 * bank-transfers (`hot` false): BANK_PAYERS customers, each logged in by key on its own
 * connection with an account of its own, paying 1 to the next one's account in a ring, one
 * transfer in flight each. bank-hot-account (`hot` true): the same payers all paying one
 * merchant's account. Each transfer has a fresh id and must answer `applied`. Afterwards the
 * participants' balances are read back (the ring's sum is unchanged and every account moved by
 * exactly what it sent and received; the merchant holds exactly one unit per applied transfer)
 * and the teller's totals() must say every currency sums to 0: anything else fails the row.
 * bank-no-ledger (`noLedger` true): bank-transfers against a server whose ledger applies nothing
 * (see server.ts); every answer must still be `applied`, and there is nothing to reconcile.
 */
async function bankWorkload(hot: boolean, noLedger = false) {
  const teller = await keyLogin(TELLER);
  const banker = (
    await teller.identity.attach({ service: "bank", perspective: "banker", client: null })
  ).perspective.castAs(Banker);
  // Logins in groups: at most 64 connections per address may wait unauthenticated.
  const payers: Array<{ connection: RpcConnection; customer: Customer; number: bigint }> = [];
  for (let i = 0; i < BANK_PAYERS; i += 20) {
    const group = await Promise.all(
      Array.from({ length: Math.min(20, BANK_PAYERS - i) }, async (_, j) => {
        const { connection, identity } = await keyLogin(payerName(i + j));
        const a = await identity.attach({ service: "bank", perspective: "customer", client: null });
        return { connection, customer: a.perspective.castAs(Customer), number: 0n };
      }),
    );
    payers.push(...group);
  }
  const merchant = hot ? await keyLogin(MERCHANT) : undefined;
  const tag = Buffer.from(randomBytes(4)).toString("hex");
  const names = [...payers.map((_, i) => payerName(i)), ...(hot ? [MERCHANT] : [])];
  const numbers = await Promise.all(
    names.map(
      async (owner) =>
        (await banker.openAccount({ owner, currency: "EUR", name: `bench ${tag}` })).info.number,
    ),
  );
  await Promise.all(
    payers.map(async (p, i) => {
      p.number = numbers[i] as bigint;
      const r = await banker.deposit({
        account: p.number,
        id: randomBytes(16),
        amount: BANK_OPENING,
        memo: "bench",
      });
      if (r.outcome.which() !== TransferOutcome_Which.APPLIED) throw new Error("the opening deposit failed");
    }),
  );
  const merchantNo = hot ? (numbers[BANK_PAYERS] as bigint) : 0n;
  const accounts: PrivateAccount[] = await Promise.all(
    payers.map(async (p) => {
      const mine = (await p.customer.accounts()).accounts.toArray().find((a) => a.info.number === p.number);
      if (mine === undefined) throw new Error(`account ${p.number} is not among its owner's`);
      return mine.account;
    }),
  );
  const sent = payers.map(() => 0n);
  const run = async (ms: number) => {
    const end = Date.now() + ms;
    const latencies: number[] = [];
    const started = process.hrtime.bigint();
    await Promise.all(
      payers.map(async (_, i) => {
        const account = accounts[i] as PrivateAccount;
        const to = hot ? merchantNo : (payers[(i + 1) % payers.length]?.number as bigint);
        while (Date.now() < end) {
          const t0 = process.hrtime.bigint();
          using p = account.pay({
            transfer: { id: newTransferId(), to, amount: 1n, currency: "EUR", memo: "" },
          });
          const outcome = (await p).outcome;
          if (outcome.which() !== TransferOutcome_Which.APPLIED) {
            throw new Error(`a transfer answered union member ${outcome.which()}, not applied`);
          }
          sent[i] = (sent[i] as bigint) + 1n;
          latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    latencies.sort((a, b) => a - b);
    return {
      transfers_per_s: Math.round(latencies.length / seconds),
      p50_ms: Math.round(percentile(latencies, 50) / 100) / 10,
      p99_ms: Math.round(percentile(latencies, 99) / 100) / 10,
      transfers: latencies.length,
      seconds: Math.round(seconds * 1000) / 1000,
    };
  };
  await run(BANK_WARMUP_MS);
  await window();
  const r = await run(BANK_MEASURE_MS);
  await window();
  if (noLedger) {
    // Nothing moved (the server's ledger applied nothing); each answer was checked `applied`.
    teller.connection.close();
    for (const p of payers) p.connection.close();
    return r;
  }
  // Conservation, first among the participants: every account moved by exactly what it sent
  // and received, then over the whole ledger.
  const balances = await Promise.all(accounts.map(async (a) => (await a.info()).info.balance));
  for (const [i, balance] of balances.entries()) {
    const received = hot ? 0n : (sent[(i + payers.length - 1) % payers.length] as bigint);
    const want = BANK_OPENING - (sent[i] as bigint) + received;
    if (balance !== want) throw new Error(`CONSERVATION BROKEN: payer ${i} holds ${balance}, not ${want}`);
  }
  if (merchant !== undefined) {
    const c = (
      await merchant.identity.attach({ service: "bank", perspective: "customer", client: null })
    ).perspective.castAs(Customer);
    const held = (await c.accounts()).accounts.toArray().find((a) => a.info.number === merchantNo)
      ?.info.balance;
    const want = sent.reduce((x, y) => x + y, 0n);
    if (held !== want)
      throw new Error(`CONSERVATION BROKEN: the merchant holds ${held}, not the ${want} transfers applied`);
  }
  const totals = (await banker.totals()).totals.toArray();
  const broken = totals.filter((t) => t.sum !== 0n || t.pendingSum !== 0n);
  if (totals.length === 0 || broken.length > 0) {
    throw new Error(
      `CONSERVATION BROKEN: ${broken.map((t) => `${t.currency} sums to ${t.sum} (pending ${t.pendingSum})`).join(", ") || "no totals"}`,
    );
  }
  teller.connection.close();
  merchant?.connection.close();
  for (const p of payers) p.connection.close();
  return { ...r, conserved: 1 };
}

const GO_GAMES = 20;
const GO_SPECTATORS_PER_GAME = 2;
const GO_SPECTATOR_USERS = 8;
const GO_MAX_MOVES = 300;

/**
 * go-games: GO_GAMES concurrent 19×19 games (two players each, every player signed up on its own
 * connection), each followed by GO_SPECTATORS_PER_GAME spectators spread over GO_SPECTATOR_USERS
 * users on their own connections. In every game the side to move plays a random empty point (a
 * refused one — suicide, ko — is replaced by another), one move in flight per game; a game at
 * GO_MAX_MOVES is resigned and a new one challenged. Figures: moves/s over all games (each one a
 * durable commit) and, for every (move × spectator), spectator receipt − the mover's send, in ms.
 */
async function goGames() {
  const players = GO_GAMES * 2;
  const conns = await brokerConnections(players + GO_SPECTATOR_USERS);
  const tag = Buffer.from(randomBytes(6)).toString("hex");
  const users: Player[] = await Promise.all(
    conns.map(async (c, i) => {
      const identity = await signUpIdentity(c.bootstrap(Root), `go-${tag}-${i}`, `password ${tag} ${i}`);
      return (
        await identity.attach({
          service: GO_PLAYER.service,
          perspective: GO_PLAYER.perspective,
          client: null,
        })
      ).perspective.castAs(GO_PLAYER.Ctor);
    }),
  );
  const sentAt = new Map<string, bigint>();
  const latencies: number[] = [];
  let measuring = false;
  const size = 19;
  const game = async (i: number) => {
    const [black, white] = [users[2 * i] as Player, users[2 * i + 1] as Player];
    const terms = {
      rules: { size, komi: 6.5 },
      time: {},
      ranked: false,
      color: ColorChoice.BLACK,
      opponent: "",
    };
    const { id } = await black.challenge({ terms });
    const w = (await white.accept({ id })).game;
    const b = (await black.game({ id: (await w.info()).info.id })).game;
    const gid = (await b.info()).info.id;
    for (let k = 0; k < GO_SPECTATORS_PER_GAME; k++) {
      const watcher = users[players + ((i * GO_SPECTATORS_PER_GAME + k) % GO_SPECTATOR_USERS)] as Player;
      const { spectator } = await watcher.watch({ id: gid });
      await spectator.listen({
        listener: GameListener.server({
          event({ event }) {
            if (event.which() !== GameEvent_Which.MOVED) return;
            const t0 = sentAt.get(`${gid}:${event.moved.number}`);
            if (t0 !== undefined && measuring) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          },
        }),
      });
    }
    return { gid, seats: [b, w] as [Game, Game], board: new Uint8Array(size * size), moves: 0 };
  };
  const games = await Promise.all(Array.from({ length: GO_GAMES }, (_, i) => game(i)));
  let played = 0;
  const loop = async (g: (typeof games)[number], i: number, until: () => boolean) => {
    while (!until()) {
      if (g.moves >= GO_MAX_MOVES) {
        await (g.seats[g.moves % 2] as Game).resign();
        Object.assign(g, await game(i));
      }
      const mover = g.seats[g.moves % 2] as Game;
      const empty = [];
      for (let p = 0; p < g.board.length; p++) if (g.board[p] === 0) empty.push(p);
      for (let tries = 0; ; tries++) {
        const p =
          empty.length === 0 || tries > 20 ? -1 : (empty[Math.floor(Math.random() * empty.length)] as number);
        sentAt.set(`${g.gid}:${g.moves + 1}`, process.hrtime.bigint());
        const r =
          p < 0 ? await mover.pass() : await mover.move({ point: { x: p % size, y: Math.floor(p / size) } });
        const o = r.outcome;
        if (o.which() !== MoveOutcome_Which.PLAYED) continue;
        if (p >= 0) g.board[p] = g.moves % 2 === 0 ? 1 : 2;
        for (const c of o.played.captured.toArray()) g.board[c.y * size + c.x] = 0;
        g.moves++;
        if (measuring) played++;
        break;
      }
    }
  };
  const run = async (ms: number) => {
    const end = Date.now() + ms;
    await Promise.all(games.map((g, i) => loop(g, i, () => Date.now() >= end)));
  };
  await run(1000);
  measuring = true;
  const started = process.hrtime.bigint();
  await run(4000);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  measuring = false;
  latencies.sort((a, b) => a - b);
  for (const c of conns) c.close();
  return {
    moves_per_s: Math.round(played / seconds),
    spectator_p50_ms: Math.round(percentile(latencies, 50) * 10) / 10,
    spectator_p99_ms: Math.round(percentile(latencies, 99) * 10) / 10,
    deliveries: latencies.length,
    games: GO_GAMES,
  };
}

/** Logs each of `names` in by its bench key, `perConnection` to a connection, one login at a time per connection. */
async function keyLogins(
  names: readonly string[],
  perConnection: number,
): Promise<{ connections: RpcConnection[]; identities: Identity[] }> {
  const groups = Math.ceil(names.length / perConnection);
  const connections = await brokerConnections(groups);
  const identities: Identity[] = new Array(names.length);
  await Promise.all(
    connections.map(async (c, g) => {
      const root = c.bootstrap(Root);
      for (let i = g * perConnection; i < Math.min(names.length, (g + 1) * perConnection); i++) {
        const name = names[i] as string;
        const r = await loginWithKey(root, name, benchKey(name));
        if (r.identity === undefined)
          throw new Error(`${name}'s key is not registered (start the server with --chat)`);
        identities[i] = r.identity;
      }
    }),
  );
  return { connections, identities };
}

/** Fails with `what` if `done` has not resolved within `ms`. */
async function within<T>(done: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

const FANOUT_IN_FLIGHT = 4;
const FANOUT_WARMUP = 50;
const FANOUT_EVENTS = 300;

/**
 * router-fanout: ROUTER_SUBSCRIBER_USERS users, each logged in by key on its own connection with
 * ROUTER_SESSIONS_PER_USER router sessions, each session subscribed (exact match) to one topic
 * with its own EventHandler; one publisher session on its own connection. Event k's kwargs carry
 * k and its send time; at most FANOUT_IN_FLIGHT events are in flight, an event counting from its
 * publish until every subscriber heard it. Each handler checks that it hears k = 0, 1, 2, … and
 * increasing router sequences, and answers at once.
 */
async function routerFanout() {
  const subscriberNames = Array.from({ length: ROUTER_SUBSCRIBER_USERS }, (_, i) => routerSubscriberName(i));
  const subs = await keyLogins(subscriberNames, 1);
  const pub = await keyLogins([ROUTER_PUBLISHER], 1);
  const publisher = attach(pub.identities[0] as Identity, ROUTER_SESSION);
  const topic = `bench.fanout.${Buffer.from(randomBytes(4)).toString("hex")}`;
  const subscribers = ROUTER_SUBSCRIBER_USERS * ROUTER_SESSIONS_PER_USER;
  const total = FANOUT_WARMUP + FANOUT_EVENTS;
  const heard = new Uint32Array(total);
  const next = new Uint32Array(subscribers);
  const lastSeq = new Array<bigint>(subscribers).fill(0n);
  const latencies = new Float64Array(FANOUT_EVENTS * subscribers);
  let measured = 0;
  let lastReceipt = 0;
  let failure: string | undefined;
  const waiters = new Map<number, () => void>();
  let wakeFailure: () => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    wakeFailure = () => reject(new Error(failure));
  });
  failed.catch(() => {});
  const fail = (why: string): void => {
    if (failure !== undefined) return;
    failure = why;
    wakeFailure();
  };
  const handler = (i: number) =>
    EventHandler.server({
      event({ event }) {
        const at = performance.now();
        const { k, t } = JSON.parse(event.payload.kwargs) as { k: number; t: number };
        if (k !== next[i]) return fail(`subscriber ${i} heard event ${k}, not ${next[i]}`);
        if (event.seq <= (lastSeq[i] as bigint)) return fail(`subscriber ${i} heard seq ${event.seq} again`);
        lastSeq[i] = event.seq;
        next[i] = k + 1;
        if (k >= FANOUT_WARMUP) {
          latencies[measured++] = at - t;
          lastReceipt = at;
        }
        heard[k] = (heard[k] as number) + 1;
        if (heard[k] === subscribers) waiters.get(k)?.();
      },
      unrecoverable({ after, resumedFrom }) {
        fail(`subscriber ${i} heard unrecoverable(${after}, ${resumedFrom})`);
      },
    });
  // Held to the end: a released (or collected) session or Subscription ends the subscription.
  const held: Array<RouterSession | Subscription> = [];
  await Promise.all(
    subs.identities.map(async (identity, u) => {
      for (let j = 0; j < ROUTER_SESSIONS_PER_USER; j++) {
        const session: RouterSession = attach(identity, ROUTER_SESSION);
        const i = u * ROUTER_SESSIONS_PER_USER + j;
        const r = await session.subscribe({ topic, handler: handler(i), options: { match: UriMatch.EXACT } });
        held.push(session, r.subscription);
      }
    }),
  );
  // Event k is in flight from its publish until every subscriber heard it.
  let started = 0;
  const publishOne = async (k: number): Promise<void> => {
    const everyone = new Promise<void>((r) => waiters.set(k, r));
    const t = performance.now();
    if (k === FANOUT_WARMUP) started = t;
    using p = publisher.publish({
      topic,
      payload: { args: "", kwargs: JSON.stringify({ k, t }) },
      options: {},
    });
    await Promise.race([p, failed]);
    await within(
      Promise.race([everyone, failed]),
      30_000,
      () => `event ${k}: ${heard[k]} of ${subscribers} subscribers heard it in 30 s`,
    );
    waiters.delete(k);
  };
  let sent = 0;
  await Promise.all(
    Array.from({ length: FANOUT_IN_FLIGHT }, async () => {
      while (sent < total) await publishOne(sent++);
    }),
  );
  const seconds = (lastReceipt - started) / 1000;
  for (let i = 0; i < subscribers; i++) {
    if (next[i] !== total)
      throw new Error(`DELIVERY BROKEN: subscriber ${i} heard ${next[i]} of ${total} events`);
  }
  if (measured !== latencies.length)
    throw new Error(`DELIVERY BROKEN: ${measured} measured deliveries, not ${latencies.length}`);
  const sorted = Array.from(latencies.sort());
  for (const cap of [...held, publisher, ...subs.identities, ...pub.identities]) cap.dispose();
  for (const c of [...subs.connections, ...pub.connections]) c.close();
  return {
    deliveries_per_s: Math.round((FANOUT_EVENTS * subscribers) / seconds),
    publishes_per_s: Math.round(FANOUT_EVENTS / seconds),
    p50_ms: Math.round(percentile(sorted, 50) * 10) / 10,
    p99_ms: Math.round(percentile(sorted, 99) * 10) / 10,
    subscribers,
    events: FANOUT_EVENTS,
    seconds: Math.round(seconds * 1000) / 1000,
    exactly_once: 1,
  };
}

const ROOM_LOGINS_PER_CONNECTION = 25;
const ROOM_POSTERS = 10;
const ROOM_WARMUP = 10;
const ROOM_POSTS = 30;

/**
 * chat-room-1000: ROOM_MEMBERS users logged in by key, ROOM_LOGINS_PER_CONNECTION to a
 * connection, each with a chat attachment. Member 0 creates a public room; everyone else joins it
 * without a listener; then every member joins again with a RoomListener, resuming after the
 * room's last message (the joins' notices). ROOM_POSTERS members on different connections post
 * in a loop, one post in flight each, the text carrying the post's send time. Every listener
 * checks that it hears text messages with sequences base + 1, base + 2, … in order.
 */
async function chatRoom() {
  const names = Array.from({ length: ROOM_MEMBERS }, (_, i) => memberName(i));
  const { connections, identities } = await keyLogins(names, ROOM_LOGINS_PER_CONNECTION);
  const members = identities.map((identity) => attach(identity, CHAT_MEMBER));
  const owner = members[0] as ChatMember;
  const room = `bench-${Buffer.from(randomBytes(4)).toString("hex")}`;
  await owner.createRoom({ name: room, kind: RoomKind.PUBLIC, topic: "", options: {} });
  await Promise.all(members.slice(1).map((m) => m.join({ room, options: {} })));
  // Joining again, already a member, adds no message: the room's last one is the last `joined`.
  const base = Number((await owner.join({ room, options: {} })).info.lastSeq);
  const total = ROOM_POSTERS * (ROOM_WARMUP + ROOM_POSTS);
  /** Listeners that heard message base + n (each one heard every message before it, in order). */
  const heard = new Uint32Array(total + 1);
  const next = new Float64Array(ROOM_MEMBERS).fill(base + 1);
  const latencies: number[] = [];
  let lastReceipt = 0;
  let delivered = 0;
  let failure: string | undefined;
  let waiting: { seq: number; resolve: () => void } | undefined;
  const fail = (why: string): void => {
    failure ??= why;
    waiting?.resolve();
  };
  const listener = (i: number) =>
    RoomListener.server({
      message({ message }) {
        const at = performance.now();
        const seq = Number(message.seq);
        if (seq !== next[i]) return fail(`member ${i} heard message ${seq}, not ${next[i]}`);
        if (message.kind !== MessageKind.TEXT)
          return fail(`member ${i} heard a message of kind ${message.kind} at ${seq}`);
        if (seq > base + total) return fail(`member ${i} heard message ${seq}, beyond the ${total} posted`);
        next[i] = seq + 1;
        delivered++;
        const [, phase, t] = message.text.split(" ");
        if (phase === "m") {
          latencies.push(at - Number(t));
          lastReceipt = at;
        }
        heard[seq - base] = (heard[seq - base] as number) + 1;
        if (heard[seq - base] === ROOM_MEMBERS && waiting?.seq === seq) waiting.resolve();
      },
      typing() {},
      presence() {},
      unrecoverable({ after, resumedFrom }) {
        fail(`member ${i} heard unrecoverable(${after}, ${resumedFrom})`);
      },
      closed({ reason }) {
        fail(`member ${i}'s listener was closed: ${reason}`);
      },
    });
  const facets = await Promise.all(
    members.map(
      async (m, i) =>
        (await m.join({ room, options: { listener: listener(i), resumeAfter: BigInt(base) } })).member,
    ),
  );
  const stride = Math.floor(ROOM_MEMBERS / ROOM_POSTERS);
  const posters = Array.from({ length: ROOM_POSTERS }, (_, p) => facets[p * stride] as RoomMember);
  let lastSeq = base;
  /** Every poster posts `posts` messages, one in flight each; then every listener must hear the last. */
  const round = async (phase: "w" | "m", posts: number) => {
    await Promise.all(
      posters.map(async (facet, p) => {
        for (let k = 0; k < posts && failure === undefined; k++) {
          using post = facet.post({ text: `${p} ${phase} ${performance.now()}` });
          lastSeq = Math.max(lastSeq, Number((await post).message.seq));
        }
      }),
    );
    const target = lastSeq;
    if (failure === undefined && (heard[target - base] as number) < ROOM_MEMBERS) {
      const everyone = new Promise<void>((resolve) => {
        waiting = { seq: target, resolve };
      });
      await within(
        everyone,
        30_000,
        () => `only ${heard[target - base]} listeners heard message ${target} in 30 s`,
      );
      waiting = undefined;
    }
    if (failure !== undefined) throw new Error(`DELIVERY BROKEN: ${failure}`);
  };
  await round("w", ROOM_WARMUP);
  const started = performance.now();
  const before = delivered;
  await round("m", ROOM_POSTS);
  const seconds = (lastReceipt - started) / 1000;
  const posts = ROOM_POSTERS * ROOM_POSTS;
  if (lastSeq !== base + total)
    throw new Error(`DELIVERY BROKEN: the last post is ${lastSeq}, not ${base + total}`);
  for (let i = 0; i < ROOM_MEMBERS; i++) {
    if (next[i] !== base + total + 1)
      throw new Error(
        `DELIVERY BROKEN: member ${i} heard up to ${(next[i] as number) - 1}, not ${base + total}`,
      );
  }
  if (delivered - before !== posts * ROOM_MEMBERS)
    throw new Error(`DELIVERY BROKEN: ${delivered - before} deliveries, not ${posts * ROOM_MEMBERS}`);
  latencies.sort((a, b) => a - b);
  // Held to here: a released (or collected) login, perspective or facet would end what it holds.
  for (const cap of [...facets, ...members, ...identities]) cap.dispose();
  for (const c of connections) c.close();
  return {
    deliveries_per_s: Math.round((posts * ROOM_MEMBERS) / seconds),
    posts_per_s: Math.round(posts / seconds),
    p50_ms: Math.round(percentile(latencies, 50) * 10) / 10,
    p99_ms: Math.round(percentile(latencies, 99) * 10) / 10,
    members: ROOM_MEMBERS,
    posts,
    seconds: Math.round(seconds * 1000) / 1000,
    gap_free: 1,
  };
}

function brokerPort(): number {
  if (brokerPortArg === undefined) throw new Error(`${workload} needs the broker's port`);
  return Number(brokerPortArg);
}

/** A TCP proxy that delays every chunk by `ms` in each direction. */
async function delayProxy(target: number, ms: number): Promise<number> {
  const server = createServer((inbound: Socket) => {
    const outbound = netConnect(target, "127.0.0.1");
    inbound.setNoDelay(true);
    outbound.setNoDelay(true);
    inbound.on("data", (d) => setTimeout(() => outbound.write(d), ms));
    outbound.on("data", (d) => setTimeout(() => inbound.write(d), ms));
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
    inbound.on("error", () => {});
    outbound.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  server.unref();
  return (server.address() as { port: number }).port;
}

async function main(): Promise<unknown> {
  switch (workload) {
    case "echo-1": {
      const c = await open(serverPort);
      await drive([c], 1, 2000);
      const r = await drive([c], 1, 10_000);
      c.close();
      return r;
    }
    case "echo-64": {
      const c = await open(serverPort);
      await drive([c], 64, 5000);
      const r = await drive([c], 64, 40_000);
      c.close();
      return r;
    }
    case "conn-100": {
      const clients = await Promise.all(Array.from({ length: 100 }, () => open(serverPort)));
      await drive(clients, 1, 5000);
      const r = await drive(clients, 1, 30_000);
      for (const c of clients) c.close();
      return r;
    }
    case "chain-3": {
      const delayMs = 5;
      const c = await open(await delayProxy(serverPort, delayMs));
      for (let i = 0; i < 3; i++) await c.chain();
      const times: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t0 = process.hrtime.bigint();
        await c.chain();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      c.close();
      times.sort((a, b) => a - b);
      const median = percentile(times, 50);
      return {
        round_trips: Math.round((median / (2 * delayMs)) * 100) / 100,
        chain_ms: Math.round(median * 10) / 10,
      };
    }
    case "idle-memory": {
      const clients: BenchClient[] = [];
      for (let i = 0; i < 1000; i++) {
        const c = await open(serverPort);
        await c.echo();
        clients.push(c);
      }
      process.stdout.write("opened\n");
      await new Promise<void>((resolve) => {
        createInterface({ input: process.stdin }).on("line", (l) => {
          if (l.trim() === "close") resolve();
        });
      });
      for (const c of clients) c.close();
      return { opened: clients.length };
    }
    case "echo-probe": {
      // One echo in flight, as echo-1 but shorter: echo-under-logins runs it with and without logins.
      const c = await open(serverPort);
      await drive([c], 1, 1000);
      const r = await drive([c], 1, 5000);
      c.close();
      return r;
    }
    case "login-rate": {
      const d = await loginDriver(brokerPort());
      const after = (ms: number) => {
        const end = Date.now() + ms;
        return () => Date.now() >= end;
      };
      await d.run(after(1000));
      const r = await d.run(after(4000));
      d.close();
      return r;
    }
    case "wallet-updates":
      return walletUpdates();
    case "wallet-notify":
      return walletNotify();
    case "bank-transfers":
      return bankWorkload(false);
    case "bank-hot-account":
      return bankWorkload(true);
    case "bank-no-ledger":
      return bankWorkload(false, true);
    case "go-games":
      return goGames();
    case "router-fanout":
      return routerFanout();
    case "chat-room-1000":
      return chatRoom();
    case "login-load": {
      // Background logins for echo-under-logins: from "started" until "stop" on stdin (at most 5 min).
      const d = await loginDriver(brokerPort());
      let stop = false;
      const deadline = Date.now() + 300_000;
      createInterface({ input: process.stdin }).on("line", (l) => {
        if (l.trim() === "stop") stop = true;
      });
      const warm = Date.now() + 500;
      await d.run(() => Date.now() >= warm);
      const running = d.run(() => stop || Date.now() >= deadline);
      process.stdout.write("started\n");
      const r = await running;
      d.close();
      return r;
    }
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    setTimeout(() => process.exit(0), 50);
  },
  (err: unknown) => {
    process.stderr.write(`bench client failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
