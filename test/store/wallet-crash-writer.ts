/**
 * Child process for crash.test.ts: opens the store at argv[2] (synchronous FULL, the default),
 * creates the identity "wallet" and loops until killed, storing `walletFor(1)`, `walletFor(2)`, ...
 * After each accepted update it writes `sequence N` to fd 1 synchronously, so every line the parent
 * reads is a commit the store returned.
 */
import { writeSync } from "node:fs";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { walletFor } from "./fixtures.js";
import { walletsOf } from "../helpers/stores.js";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: wallet-crash-writer.ts <store file>");
const store = SqliteBrokerStore.open(file);
const identity = await store.createIdentity({ name: "wallet", verifier: null, keyring: [] });
for (let sequence = 1; ; sequence++) {
  const result = await walletsOf(store).updateWallet(identity.id, identity.epoch, walletFor(sequence));
  if (result.kind !== "accepted") throw new Error(`update ${sequence}: ${result.kind}`);
  writeSync(1, `sequence ${sequence}\n`);
}
