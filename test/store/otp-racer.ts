/**
 * Child process for otp-race.test.ts: opens the store at argv[2], prints `ready`, waits for a
 * line on stdin, then tries to consume OTPs 0..argv[3]-1 of the identity "racer" as fast as it
 * can and prints `won i` for each one it got, then `done`.
 */
import { writeSync } from "node:fs";
import { once } from "node:events";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { otpHash } from "./fixtures.js";

const [file, countArg] = process.argv.slice(2);
if (file === undefined || countArg === undefined) throw new Error("usage: otp-racer.ts <store file> <count>");
const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
const racer = await store.findIdentityByName("racer");
if (!racer) throw new Error("no identity racer");
writeSync(1, "ready\n");
await once(process.stdin, "data");
for (let i = 0; i < Number(countArg); i++) {
  if (await store.consumeOtp(racer.id, otpHash(i), 0)) writeSync(1, `won ${i}\n`);
}
writeSync(1, "done\n");
store.close();
process.exit(0);
