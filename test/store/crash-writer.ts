/**
 * Child process for crash.test.ts: opens the store at argv[2] and loops until killed, each round
 * changing the verifier (an epoch bump with a "credential" audit row, deleting the API keys) and
 * creating an API key `key N` with a three-pair keyring (with an "admin" audit row). After each
 * acknowledged verifier change it writes `epoch N` to fd 1 synchronously, so every line the parent
 * reads is a commit the store returned.
 */
import { writeSync } from "node:fs";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { bytes32, KEYRING, verifier } from "./fixtures.js";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: crash-writer.ts <store file>");
const store = SqliteBrokerStore.open(file);
const who = { username: "crash", remoteAddress: "local" };
const identity = await store.createIdentity({ name: "crash", verifier: verifier(0), keyring: KEYRING });
for (let round = 1; ; round++) {
  const epoch = await store.changeVerifier(identity.id, verifier(round % 200), {
    audit: { ...who, kind: "credential", identityId: identity.id, detail: `round ${round}` },
  });
  writeSync(1, `epoch ${epoch}\n`);
  await store.createApiKey(
    {
      identityId: identity.id,
      description: `key ${round}`,
      keyring: KEYRING,
      createdAt: round,
      expiresAt: 0,
    },
    (id) => bytes32(id % 256),
    { audit: { ...who, kind: "admin", identityId: identity.id, detail: `key ${round}` } },
  );
}
