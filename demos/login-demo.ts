/**
 * The login demo (`npm run demo:login`): a new user's tour of Parallax's logins, against real
 * brokers on temporary folders, over WebSocket, through the public API only.
 *
 * Every step prints one numbered line: `✔` when it behaved as described, `✘` with what was
 * expected and what happened instead. The process exits 0 only if every step behaved as
 * described (1 otherwise, also on any unexpected error), after closing every connection and
 * server and removing the temporary folders.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  attach,
  BROKER_ADMIN,
  type BrokerServer,
  brokerSchema,
  connect,
  ErrorCode,
  type KeyringPair,
  LOBBY_MEMBER,
  loginWithPassword,
  makeVerifier,
  type RpcConnection,
  signUp,
  startBroker,
} from "../src/index.js";
import { codeOf, failure, runStory, Steps } from "./steps.js";

const { AuthMethod, Root } = brokerSchema;

const MEMBER: KeyringPair = { service: LOBBY_MEMBER.service, perspective: LOBBY_MEMBER.perspective };
const GUEST: KeyringPair = { service: "lobby", perspective: "guest" };
const ADMIN: KeyringPair = { service: BROKER_ADMIN.service, perspective: BROKER_ADMIN.perspective };
const ALICE_PASSWORD = "correct horse battery staple";

// --- reporting -------------------------------------------------------------------------------

const steps = new Steps();

const pairs = (list: { toArray(): { service: string; perspective: string }[] }): string =>
  list
    .toArray()
    .map((k) => `${k.service}/${k.perspective}`)
    .sort()
    .join(", ");

const METHOD_NAMES = new Map<number, string>(
  Object.entries(AuthMethod).map(([name, value]) => [value, name.toLowerCase().replace("_", " ")]),
);

// --- resources (closed at the end, whatever happens) -------------------------------------------

const folders: string[] = [];
const servers: BrokerServer[] = [];
const connections: RpcConnection[] = [];

function tempFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "parallax-login-demo-"));
  folders.push(dir);
  return dir;
}

/** A new connection, as a new client would open it: WebSocket to the broker's `/rpc`. */
async function newClient(server: BrokerServer): Promise<brokerSchema.Root> {
  const connection = await connect(server.url);
  connections.push(connection);
  return connection.bootstrap(Root);
}

async function cleanUp(): Promise<void> {
  for (const c of connections) c.close("the demo is done");
  for (const s of servers) await s.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
}

// --- the demo ----------------------------------------------------------------------------------

async function openSignUp(): Promise<void> {
  const server = await startBroker({ port: 0, tcpPort: null, dataDir: tempFolder(), signUp: "open" });
  servers.push(server);
  console.log(`broker with open sign-up at ${server.url}`);

  // 1. sign up: the client sends a verifier, never the password
  {
    const root = await newClient(server);
    const res = await signUp(root, "alice", ALICE_PASSWORD);
    if (res.identity === undefined) {
      steps.report(false, "the sign-up answered pending", "an open server signs alice up at once");
    } else {
      using identity = res.identity;
      const who = (await identity.whoami()).info;
      steps.report(
        who.name === "alice" && who.authMethod === AuthMethod.SIGN_UP,
        `signed up as ${who.name}${who.authMethod === AuthMethod.SIGN_UP ? "" : ` (a ${METHOD_NAMES.get(who.authMethod)} login?)`}`,
        "whoami of the new Identity says alice, sign up",
      );
    }
  }

  // 2. log in on a fresh connection; loginWithPassword checks the server's SCRAM signature
  const login = await loginWithPassword(await newClient(server), "alice", ALICE_PASSWORD);
  const oldIdentity = login.identity;
  {
    const who = (await oldIdentity.whoami()).info;
    steps.report(
      who.name === "alice" && who.authMethod === AuthMethod.PASSWORD,
      `logged in as ${who.name} with her password on a fresh connection (${METHOD_NAMES.get(who.authMethod)} login); the server proved it holds her verifier`,
      "whoami says alice, password login",
    );
  }

  // 3. a wrong password
  await steps.expectFailure(
    loginWithPassword(await newClient(server), "alice", "wrong horse"),
    ErrorCode.AUTH_FAILED,
    "a wrong password is refused",
  );

  // 4. attach the lobby; the Room is a Viewable: it names the speaker from the perspective
  const member = attach(oldIdentity, LOBBY_MEMBER);
  {
    const greeting = (await member.hello()).greeting;
    steps.report(
      greeting.includes("alice"),
      `attached lobby/member; hello() says "${greeting}"`,
      "hello() greets alice by name",
    );
    using room = (await member.room()).room;
    const line = (await room.say({ text: "hi" })).line;
    steps.report(
      line.speaker === "alice" && line.text === "hi",
      `said "${line.text}" in the room: the line is signed "${line.speaker}" (from the perspective, not an argument)`,
      'the line is "hi", signed "alice"',
    );
  }

  // 5. whoami
  {
    const who = (await oldIdentity.whoami()).info;
    const attached = who.attached
      .toArray()
      .map((a) => `${a.service}/${a.perspective} via ${a.grant}`)
      .join(", ");
    const shown =
      `whoami: ${who.name}, ${METHOD_NAMES.get(who.authMethod)} login, grant "${who.grant}", ` +
      `keyring [${pairs(who.keyring)}], epoch ${who.epoch}, attached [${attached}]`;
    steps.report(
      who.name === "alice" &&
        who.authMethod === AuthMethod.PASSWORD &&
        who.grant === "password" &&
        pairs(who.keyring) ===
          "bank/customer, bank/employee, chat/member, go/player, lobby/member, router/session, wallet/owner" &&
        attached === "lobby/member via password",
      shown,
      'alice, password login, grant "password", keyring [bank/customer, bank/employee, chat/member, go/player, lobby/member, router/session, wallet/owner], attached [lobby/member via password]',
    );
  }

  // 6. the operator widens alice's keyring. The store commits the change and bumps her epoch; the
  //    broker then revokes every older login of hers (as Admin.setKeyring does; changes another
  //    process such as the CLI commits are noticed by the broker's watcher instead).
  const alice = await server.store.findIdentityByName("alice");
  if (alice === undefined) throw new Error("alice is not in the store");
  const epoch = await server.store.setKeyring(alice.id, [MEMBER, GUEST]);
  server.broker.revokeIdentity(alice.id, epoch, "the keyring changed");
  steps.report(
    epoch === alice.epoch + 1,
    `the operator changed alice's keyring to [lobby/guest, lobby/member]: epoch ${alice.epoch} → ${epoch}`,
    `the epoch goes from ${alice.epoch} to ${alice.epoch + 1}`,
  );
  {
    const fromIdentity = await failure(oldIdentity.whoami());
    const fromMember = await failure(member.hello());
    steps.report(
      codeOf(fromIdentity) === ErrorCode.REVOKED && codeOf(fromMember) === ErrorCode.REVOKED,
      codeOf(fromIdentity) === ErrorCode.REVOKED && codeOf(fromMember) === ErrorCode.REVOKED
        ? `her old login and its lobby perspective are revoked: ${ErrorCode.REVOKED}`
        : `old Identity.whoami: ${codeOf(fromIdentity)}; old LobbyMember.hello: ${codeOf(fromMember)}`,
      `both fail with ${ErrorCode.REVOKED}`,
    );
  }
  member.dispose();
  oldIdentity.dispose();

  // 7. log in again: the new keyring
  const passwordRoot = await newClient(server);
  const { identity } = await loginWithPassword(passwordRoot, "alice", ALICE_PASSWORD);
  {
    const who = (await identity.whoami()).info;
    steps.report(
      pairs(who.keyring) === "lobby/guest, lobby/member" && who.epoch === BigInt(epoch),
      `logged in again: keyring [${pairs(who.keyring)}], epoch ${who.epoch}`,
      `keyring [lobby/guest, lobby/member], epoch ${epoch}`,
    );
  }

  // 8. an API key limited to lobby/member
  const created = await identity.createApiKey({ description: "ci", keyring: [MEMBER], expiresAt: 0n });
  const secret = created.secret;
  const keyId = created.key.id;
  steps.report(
    secret !== "" && pairs(created.key.keyring) === "lobby/member",
    `minted API key ${keyId} "ci" for [${pairs(created.key.keyring)}] (secret shown once: ${secret.slice(0, 8)}…)`,
    "a key for [lobby/member] and its secret",
  );
  {
    const root = await newClient(server);
    using viaKey = (await root.loginWithApiKey({ key: secret })).identity;
    const who = (await viaKey.whoami()).info;
    steps.report(
      who.authMethod === AuthMethod.API_KEY &&
        who.grant === `api key ${keyId} (ci)` &&
        pairs(who.keyring) === "lobby/member",
      `logged in with the API key (${METHOD_NAMES.get(who.authMethod)} login): grant "${who.grant}", keyring [${pairs(who.keyring)}] only`,
      `api key login, grant "api key ${keyId} (ci)", keyring [lobby/member] only`,
    );
    await steps.expectFailure(
      viaKey.attach({ ...GUEST, client: null }),
      ErrorCode.PERMISSION_DENIED,
      "the API-key login may not attach lobby/guest",
    );
    await steps.expectFailure(
      viaKey.createApiKey({ description: "more", keyring: [], expiresAt: 0n }),
      ErrorCode.PERMISSION_DENIED,
      "the API-key login may not mint API keys",
    );
  }

  // 9. a one-time password: works once
  const { otp, expiresAt } = await identity.createOtp();
  steps.report(
    otp !== "",
    `made a one-time password from the password login (valid until ${new Date(Number(expiresAt)).toISOString()})`,
    "a non-empty one-time password",
  );
  {
    const root = await newClient(server);
    using viaOtp = (await root.loginWithOtp({ username: "alice", otp })).identity;
    const who = (await viaOtp.whoami()).info;
    steps.report(
      who.name === "alice" && who.authMethod === AuthMethod.OTP,
      `logged in as ${who.name} with the one-time password on a new connection (${METHOD_NAMES.get(who.authMethod)} login)`,
      "whoami says alice, otp login",
    );
    await steps.expectFailure(
      root.loginWithOtp({ username: "alice", otp }),
      ErrorCode.AUTH_FAILED,
      "the same one-time password a second time is refused",
    );
  }
  identity.dispose();
}

async function approvalSignUp(): Promise<void> {
  const server = await startBroker({ port: 0, tcpPort: null, dataDir: tempFolder(), signUp: "approval" });
  servers.push(server);
  console.log(`broker with sign-up by approval at ${server.url}`);

  // the operator adds an admin through the store, as the CLI does
  const { verifier } = await makeVerifier("admin password");
  await server.store.createIdentity({ name: "root-admin", verifier, keyring: [ADMIN] });

  // 10. bob signs up and waits; nothing polls
  const bob = await signUp(await newClient(server), "bob", "bob's password");
  if (bob.pending === undefined) {
    steps.report(false, "bob's sign-up answered an Identity at once", "a PendingApproval");
    bob.identity.dispose();
    return;
  }
  using bobPending = bob.pending;
  const bobRequest = (await bobPending.request()).request;
  let bobDecided = false;
  const bobWait = bobPending.wait().then(
    (r) => ({ identity: r.identity }),
    (e: unknown) => ({ error: e }),
  );
  void bobWait.then(() => {
    bobDecided = true;
  });
  steps.report(
    bobRequest.username === "bob",
    `bob signed up: pending approval (request ${bobRequest.id} for "${bobRequest.username}"); he calls wait()`,
    'a pending request for "bob"',
  );

  // 11. the admin logs in and looks at what waits
  using adminIdentity = (await loginWithPassword(await newClient(server), "root-admin", "admin password"))
    .identity;
  using admin = attach(adminIdentity, BROKER_ADMIN);
  {
    const pending = (await admin.listPending()).requests.toArray();
    const mine = pending.find((p) => p.id === bobRequest.id);
    const shown = pending.map((p) => `${p.id} ${p.username}`).join(", ");
    steps.report(
      mine?.username === "bob" && !bobDecided,
      `root-admin attached broker/admin: listPending shows [${shown}]; bob ${bobDecided ? "no longer waits" : "still waits"}`,
      `listPending shows bob's request ${bobRequest.id}, and bob's wait() is still open`,
    );
  }

  // 12. approve: bob's wait() answers with his Identity
  await admin.decide({ id: bobRequest.id, approve: true, reason: "" });
  {
    const res = await bobWait;
    if ("error" in res) {
      steps.report(
        false,
        `the admin approved bob, but his wait() failed: ${String(res.error)}`,
        "bob's wait() resolves with his Identity",
      );
    } else {
      using bobIdentity = res.identity;
      const who = (await bobIdentity.whoami()).info;
      steps.report(
        who.name === "bob",
        `the admin approved bob: his wait() answered an Identity; whoami says "${who.name}" (grant "${who.grant}")`,
        'whoami of the Identity says "bob"',
      );
    }
  }

  // 13. carol signs up; the admin rejects her with a reason
  const carol = await signUp(await newClient(server), "carol", "carol's password");
  if (carol.pending === undefined) {
    steps.report(false, "carol's sign-up answered an Identity at once", "a PendingApproval");
    carol.identity.dispose();
    return;
  }
  using carolPending = carol.pending;
  const carolRequest = (await carolPending.request()).request;
  const carolWait = failure(carolPending.wait());
  await admin.decide({ id: carolRequest.id, approve: false, reason: "unknown person" });
  const err = await carolWait;
  if (typeof err === "string") {
    steps.report(
      false,
      `the admin rejected carol, but her wait(): ${err}`,
      `it fails with ${ErrorCode.REJECTED}`,
    );
  } else {
    steps.report(
      err.code === ErrorCode.REJECTED && err.message.includes("unknown person"),
      `the admin rejected carol: her wait() failed with ${err.code} "${err.message}"`,
      `it fails with ${ErrorCode.REJECTED} and the reason "unknown person"`,
    );
  }
}

await runStory(
  steps,
  async () => {
    await openSignUp();
    await approvalSignUp();
  },
  cleanUp,
);
