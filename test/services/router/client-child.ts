/**
 * Child process for kill.test.ts: a backend service as a seed 003 script would be — it logs in
 * to the broker at argv[2] as argv[3] (password argv[4]) with a RouterClient, registers
 * `svc.kill.echo` (answers its pid) and `svc.kill.hang` (never answers, so a call can be in
 * flight when it dies), adds a roster entry to `roster.kill`, then writes `ready <session>` to
 * fd 1 and waits to be killed.
 */
import { writeSync } from "node:fs";
import { connect } from "../../../src/client.js";
import { RouterClient } from "../../../src/services/router/router-client.js";

const [url, username, password] = process.argv.slice(2);
if (url === undefined || username === undefined || password === undefined) {
  throw new Error("usage: client-child.ts <broker url> <user> <password>");
}
const client = new RouterClient({
  connect: () => connect(url),
  passwordLogin: undefined,
});
await client.changeUser(username, password);
await client.register("svc.kill.echo", () => ({ pid: process.pid }));
await client.register("svc.kill.hang", () => new Promise(() => {}));
await client.rosterRegister("roster.kill", { pid: process.pid });
const me = await client.whoami();
writeSync(1, `ready ${me.session}\n`);
setInterval(() => {}, 1 << 30);
