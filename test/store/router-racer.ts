/**
 * Child process for router.test.ts: opens the store at argv[2], prints `ready`, waits for a line
 * on stdin, then writes keys k0..k(argv[3]-1) of the identity "racer" expecting version 1 each,
 * value argv[4], and prints `won i` for each write that landed, then `done`.
 */
import { once } from "node:events";
import { writeSync } from "node:fs";
import { ROUTER_STORE, SqliteBrokerStore } from "../../src/store/index.js";

const [file, countArg, tag] = process.argv.slice(2);
if (file === undefined || countArg === undefined || tag === undefined) {
  throw new Error("usage: router-racer.ts <store file> <count> <tag>");
}
const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
const router = store.repository(ROUTER_STORE);
const racer = await store.findIdentityByName("racer");
if (!router || !racer) throw new Error("no router repository or no identity racer");
writeSync(1, "ready\n");
await once(process.stdin, "data");
for (let i = 0; i < Number(countArg); i++) {
  const r = await router.metadataSet(
    racer.id,
    `k${i}`,
    JSON.stringify(tag),
    { kind: "version", version: 1 },
    { maxKeys: 1_000_000, now: 0 },
  );
  if (r.kind === "ok") writeSync(1, `won ${i}\n`);
}
writeSync(1, "done\n");
store.close();
process.exit(0);
