/**
 * The chat and router demo (`npm run demo:chat`): seed 003's izaber WAMP examples, in Parallax
 * terms — whoami, calls with positional and named arguments, a prefix registration whose callee
 * learns who called, publish/subscribe, rosters, metadata, an OTP and a URI-scoped API key,
 * change_user and delayed login — then seed 004's chat: two users in a room while a third tries
 * to post as one of them. A real broker on a temporary folder, over WebSocket, through the public
 * API only.
 *
 * Every step prints one numbered line: `✔` when it behaved as described, `✘` with what was
 * expected and what happened instead. The process exits 0 only if every step behaved as
 * described (1 otherwise, also on any unexpected error), after closing every connection and
 * server and removing the temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  attach,
  type BrokerServer,
  brokerSchema,
  CHAT_MEMBER,
  chatSchema,
  connect,
  ErrorCode,
  loginWithPassword,
  makeVerifier,
  type RouterEvent,
  RouterClient,
  type RouterService,
  type RpcConnection,
  startBroker,
} from "../src/index.js";
import { codeOf, failure, runStory, Steps } from "./steps.js";

const { Root } = brokerSchema;
const { RoomKind, RoomListener } = chatSchema;

// --- reporting -------------------------------------------------------------------------------

const steps = new Steps();

/** Resolves once `test()` holds, checking as things arrive; fails after 10 s instead of hanging. */
function until(test: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (test()) resolve();
      else if (Date.now() - started > 10_000) reject(new Error(`${what} did not happen within 10 s`));
      else setTimeout(check, 5);
    };
    check();
  });
}

// --- resources (closed at the end, whatever happens) -------------------------------------------

const folders: string[] = [];
const servers: BrokerServer[] = [];
const connections: RpcConnection[] = [];
const clients: RouterClient[] = [];

async function cleanUp(): Promise<void> {
  for (const c of clients) c.close();
  for (const c of connections) c.close("the demo is done");
  for (const s of servers) await s.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
}

// --- the story ---------------------------------------------------------------------------------

const PREFIX = "com.izaber.wamp.";

async function story(): Promise<void> {
  const data = mkdtempSync(path.join(tmpdir(), "parallax-chat-demo-"));
  folders.push(data);
  const server = await startBroker({ port: 0, tcpPort: null, dataDir: data, signUp: "closed" });
  servers.push(server);
  const routerService = server.broker.service("router") as RouterService;
  console.log(`broker with chat and the router at ${server.url} (data in a temporary folder)`);

  // Accounts, as `parallax user add` and `parallax user role` would make them.
  const passwords: Record<string, string> = {};
  for (const name of ["zaber", "nexus-service", "alice", "bob", "mallory"]) {
    passwords[name] = `${name} password`;
    const { verifier } = await makeVerifier(passwords[name] as string);
    const { id } = await server.store.createIdentity({
      name,
      verifier,
      keyring: server.broker.defaultKeyring,
    });
    if (name === "nexus-service") await routerService.setRole(id, "backend");
  }
  const login = (name: string) => async (root: brokerSchema.Root) =>
    (await loginWithPassword(root, name, passwords[name] as string)).identity;
  const client = async (name: string | undefined): Promise<RouterClient> => {
    const c = new RouterClient({
      connect: () => connect(server.url),
      login: name === undefined ? undefined : login(name),
      prefix: PREFIX,
    });
    clients.push(c);
    await c.start();
    return c;
  };

  console.log("## whoami (seed: wamp.call('auth.whoami'))");
  const wamp = await client("zaber");
  const me = await wamp.whoami();
  steps.report(
    me.authid === "zaber" && me.role === "frontend",
    `zaber's whoami: {authid: '${me.authid}', role: '${me.role}'} — from the login, not from anything sent`,
    "{authid: 'zaber', role: 'frontend'}",
  );

  console.log("## Calling and registering");
  const service = await client("nexus-service");
  await service.register("example.call", (inv) => ({ args: inv.args, kwargs: inv.kwargs }));
  const echoed = await wamp.call("example.call", ["pos1", "pos2"], {
    keyword1: "value1",
    keyword2: "value2",
  });
  const got = echoed.args[0] as { args: unknown[]; kwargs: Record<string, unknown> } | undefined;
  steps.report(
    JSON.stringify(got) ===
      JSON.stringify({ args: ["pos1", "pos2"], kwargs: { keyword1: "value1", keyword2: "value2" } }),
    `wamp.call('example.call', 'pos1', 'pos2', keyword1='value1', keyword2='value2') reached ${PREFIX}example.call with ${JSON.stringify(got)}`,
    "the callee receives both positional and both named arguments",
  );

  const details: string[] = [];
  const hello = await service.register(
    "example.hello",
    (inv) => {
      details.push(JSON.stringify(inv.caller));
      return `Hello ${inv.caller.authid} (role: ${inv.caller.role})! Called from: <${inv.procedure}>`;
    },
    { match: "prefix", forceReregister: true },
  );
  const greeting = (await wamp.call("example.hello.toot")).args[0];
  steps.report(
    greeting === `Hello zaber (role: frontend)! Called from: <${PREFIX}example.hello.toot>` &&
      details.length === 1,
    `a prefix registration on example.hello answered example.hello.toot: "${greeting}"; the callee was handed ${details[0]} by the broker`,
    "the callee learns the caller's authid, role and session and the full URI called, from the broker",
  );

  const notBackend = await failure(wamp.register("example.mine", () => "no"));
  steps.report(
    codeOf(notBackend) === ErrorCode.PERMISSION_DENIED,
    `zaber (frontend) registering example.mine: ${codeOf(notBackend)} — ${typeof notBackend === "string" ? "" : notBackend.message}`,
    "registering needs the backend role (PARALLAX_ERR_PERMISSION_DENIED)",
  );

  await hello.unregister();
  const gone = await failure(wamp.call("example.hello.toot"));
  steps.report(
    codeOf(gone) === ErrorCode.NOT_FOUND,
    `after wamp.unregister(registration_id) the call answers ${codeOf(gone)}`,
    "PARALLAX_ERR_NOT_FOUND: nobody registered it",
  );

  console.log("## Publish and subscribe");
  const events: RouterEvent[] = [];
  await wamp.subscribe("test.sub", (e) => {
    events.push(e);
  });
  await service.publish("test.sub", [], { Hello: "World!" });
  await until(() => events.length === 1, "the subscription event");
  const e = events[0];
  steps.report(
    e !== undefined &&
      JSON.stringify(e.kwargs) === '{"Hello":"World!"}' &&
      e.publisher.authid === "nexus-service",
    `zaber's subscription on test.sub received ${JSON.stringify(e?.kwargs)} from ${e?.publisher.authid} (${e?.publisher.role}), seq ${e?.seq}`,
    "the event, with its publisher disclosed by the broker",
  );

  console.log("## Rosters");
  const rosterKey = "roster.example.nexus-service.test";
  const changes: string[] = [];
  await wamp.rosterWatch(rosterKey, (c) => {
    changes.push(`${c.kind} ${c.entry.owner.authid}`);
  });
  await service.rosterRegister(rosterKey, { random: "data" });
  const queried = await wamp.rosterQuery(rosterKey);
  await until(() => changes.length === 1, "the roster's joined change");
  await service.rosterUnregister(rosterKey);
  await until(() => changes.length === 2, "the roster's left change");
  steps.report(
    queried.length === 1 &&
      JSON.stringify(queried[0]?.data) === '{"random":"data"}' &&
      changes.join(", ") === "joined nexus-service, left nexus-service",
    `roster_query found ${JSON.stringify(queried.map((q) => ({ owner: q.owner.authid, data: q.data })))}; zaber's watch heard: ${changes.join(", ")}`,
    "one entry owned by nexus-service, and the joined and left events Nexus cannot send",
  );

  console.log("## User metadata");
  const key = "some.preference.key";
  const set = await wamp.metadataSet(key, { random: "data" });
  const read = await wamp.metadataGet(key);
  const keys = (await wamp.metadataList()).map((m) => m.key);
  const stale = await wamp.metadataSet(key, { random: "other" }, { version: 0 });
  await wamp.metadataDelete(key);
  const after = await wamp.metadataGet(key);
  steps.report(
    set.kind === "ok" &&
      JSON.stringify(read?.value) === '{"random":"data"}' &&
      keys.join() === key &&
      stale.kind === "conflict" &&
      after === undefined,
    `metadata_set → version ${set.kind === "ok" ? set.entry.version : "?"}; metadata_get → ${JSON.stringify(read?.value)}; metadata_list → [${keys.join(", ")}]; a compare-and-set expecting it absent → ${stale.kind}; after metadata_delete, get → ${after === undefined ? "nothing" : "still there"}`,
    "set, get, list and delete, with versions",
  );

  console.log("## One-time passwords and API keys");
  const otp = await wamp.otpCreate();
  const otpClient = new RouterClient({
    connect: () => connect(server.url),
    login: async (root) => (await root.loginWithOtp({ username: otp.login, otp: otp.otp })).identity,
  });
  clients.push(otpClient);
  await otpClient.start();
  const otpWho = await otpClient.whoami();
  const otpAgain = await failure(otpClient.otpCreate());
  steps.report(
    otpWho.authid === "zaber" &&
      otpWho.authMethod === "otp" &&
      codeOf(otpAgain) === ErrorCode.PERMISSION_DENIED,
    `wamp.otp_create() → a password valid until ${new Date(otp.expiresAt).toISOString()}; a new connection logged in with it as ${otpWho.authid} (${otpWho.authMethod}); that login minting another OTP: ${codeOf(otpAgain)}`,
    "the OTP logs zaber in once; only a password login mints OTPs",
  );

  const apikey = await wamp.apikeysCreate({
    description: "Purpose of key",
    permissions: [{ uri: "example.call", match: "exact", perms: "c" }],
  });
  const listed = await wamp.apikeysList();
  const keyed = new RouterClient({
    connect: () => connect(server.url),
    login: async (root) => (await root.loginWithApiKey({ key: apikey.secret })).identity,
    prefix: PREFIX,
  });
  clients.push(keyed);
  await keyed.start();
  const allowed = await keyed.call("example.call", ["via key"]);
  const refused = await failure(keyed.publish("test.sub", ["via key"]));
  steps.report(
    (allowed.args[0] as { args: unknown[] }).args[0] === "via key" &&
      codeOf(refused) === ErrorCode.PERMISSION_DENIED &&
      listed.some((k) => k.id === apikey.id && k.permissions.length === 1),
    `wamp.apikeys_create({description: "Purpose of key"}) limited to call ${PREFIX}example.call: the key calls it, and publishing with it is ${codeOf(refused)}; apikeys_list shows it with its 1 permission`,
    "an API key narrowed to one URI and one action, on top of the user's role",
  );

  console.log("## change_user and delayed login");
  await wamp.changeUser("alice", passwords.alice as string);
  const now = await wamp.whoami();
  const wrong = await failure(wamp.changeUser("bob", "not bob's password"));
  const still = await wamp.whoami();
  steps.report(
    now.authid === "alice" && still.authid === "alice" && codeOf(wrong) === ErrorCode.AUTH_FAILED,
    `wamp.change_user('alice', …) on the live connection: whoami → ${now.authid}; a wrong password for bob → ${codeOf(wrong)}, still ${still.authid}`,
    "the connection's user changes only with the right password",
  );
  const delayed = await client(undefined);
  const before = await failure(delayed.whoami());
  await delayed.changeUser("bob", passwords.bob as string);
  steps.report(
    typeof before !== "string" && (await delayed.whoami()).authid === "bob",
    `a client made with no login (AUTORUN = False) answers whoami with ${codeOf(before)}; after change_user('bob', …): ${(await delayed.whoami()).authid}`,
    "no user until change_user logs one in",
  );

  console.log("## Chat: alice and bob in a room; mallory tries to post as alice");
  const chatOf = async (name: string) => {
    const connection = await connect(server.url);
    connections.push(connection);
    const { identity } = await loginWithPassword(connection.bootstrap(Root), name, passwords[name] as string);
    return attach(identity, CHAT_MEMBER);
  };
  const heard: Record<string, string[]> = { alice: [], bob: [], mallory: [] };
  const listener = (who: string) =>
    RoomListener.server({
      message: ({ message }) => {
        heard[who]?.push(`#${message.seq} ${message.author}: ${message.text}`);
      },
      typing: () => {},
      presence: () => {},
      unrecoverable: () => {},
      closed: ({ reason }) => {
        heard[who]?.push(`closed: ${reason}`);
      },
    });
  const alice = await chatOf("alice");
  const bob = await chatOf("bob");
  const mallory = await chatOf("mallory");
  const aliceRoom = (
    await alice.createRoom({
      name: "veggie-club",
      kind: RoomKind.MODERATED,
      topic: "vegetables",
      options: { listener: listener("alice") },
    })
  ).member;
  const bobRoom = (await bob.join({ room: "veggie-club", options: { listener: listener("bob") } })).member;
  const first = (await aliceRoom.post({ text: "hi bob" })).message;
  const second = (await bobRoom.post({ text: "hi alice" })).message;
  await until(() => heard.bob?.some((l) => l.endsWith("bob: hi alice")) === true, "bob's own line");
  steps.report(
    first.author === "alice" &&
      second.author === "bob" &&
      second.seq === first.seq + 1n &&
      heard.bob?.includes(`#${first.seq} alice: hi bob`) === true &&
      heard.bob.includes(`#${second.seq} bob: hi alice`),
    `alice made the moderated room veggie-club, bob joined; bob's listener heard: ${heard.bob?.join(" | ")}`,
    "each line stamped by the server with its author's login and the room's next sequence number",
  );

  const malloryRoom = (
    await mallory.join({ room: "veggie-club", options: { listener: listener("mallory") } })
  ).member;
  const spoof = await malloryRoom.post({ text: "[alice]: i like pork" });
  await until(() => heard.bob?.some((l) => l.includes("i like pork")) === true, "mallory's line");
  const posted = heard.bob?.find((l) => l.includes("i like pork"));
  steps.report(
    spoof.message.author === "mallory" && posted?.startsWith(`#${spoof.message.seq} mallory:`) === true,
    `mallory's post "[alice]: i like pork" reached bob as "${posted}" — RoomMember.post takes only text; the author comes from her own membership`,
    "no way to post as alice: the author is the facet's user",
  );

  const moderator = (await aliceRoom.moderation()).moderator;
  await moderator.remove({ user: "mallory", reason: "spoofing" });
  const afterRemoval = await failure(malloryRoom.post({ text: "still here?" }));
  const rejoin = await failure(mallory.join({ room: "veggie-club", options: {} }));
  steps.report(
    codeOf(afterRemoval) === ErrorCode.REVOKED && typeof rejoin !== "string",
    `alice (moderator) removed mallory: her facet now answers ${codeOf(afterRemoval)}, rejoining answers ${codeOf(rejoin)}`,
    "removal revokes the member's facet on every connection; a removed member cannot rejoin a moderated room",
  );
}

await runStory(steps, story, cleanUp);
