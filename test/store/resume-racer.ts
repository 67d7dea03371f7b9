/**
 * Child process for otp-race.test.ts: opens the store at argv[2], prints `ready`, waits for a
 * line on stdin, then rotates the resume tokens `otpHash(0..argv[3]-1)` at time argv[4] as fast as
 * it can, each to the successor `otpHash(argv[5] + i)`, printing `rotated i`, `reused i` or
 * `none i` for each outcome, then `done`.
 */
import { once } from "node:events";
import { writeSync } from "node:fs";
import { SqliteBrokerStore } from "../../src/store/index.js";
import { otpHash } from "./fixtures.js";

const [file, countArg, nowArg, offsetArg] = process.argv.slice(2);
if (file === undefined || countArg === undefined || nowArg === undefined || offsetArg === undefined) {
  throw new Error("usage: resume-racer.ts <store file> <count> <now> <successor offset>");
}
const store = SqliteBrokerStore.open(file, { synchronous: "NORMAL" });
writeSync(1, "ready\n");
await once(process.stdin, "data");
for (let i = 0; i < Number(countArg); i++) {
  const r = await store.rotateResumeToken(otpHash(i), otpHash(Number(offsetArg) + i), Number(nowArg));
  writeSync(1, `${r?.kind ?? "none"} ${i}\n`);
}
writeSync(1, "done\n");
store.close();
process.exit(0);
