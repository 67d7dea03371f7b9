/** Runs `demos/chat-demo.ts` as a user would and checks that it tells seed 003's examples and seed 004's chat step by step. */
import { describe, expect, it } from "vitest";
import { expectInOrder, runDemo } from "../helpers/demo.js";

describe("the chat and router demo", () => {
  it("runs every step as described and exits 0", { timeout: 90_000 }, async () => {
    const { code, stdout, stderr } = await runDemo("chat-demo.ts");
    expect(stdout, stderr).not.toContain("✘");
    expectInOrder(stdout, [
      "## whoami (seed: wamp.call('auth.whoami'))",
      "✔ 1. zaber's whoami: {authid: 'zaber', role: 'frontend'}",
      "## Calling and registering",
      '✔ 2. wamp.call(\'example.call\', \'pos1\', \'pos2\', keyword1=\'value1\', keyword2=\'value2\') reached com.izaber.wamp.example.call with {"args":["pos1","pos2"],"kwargs":{"keyword1":"value1","keyword2":"value2"}}',
      '✔ 3. a prefix registration on example.hello answered example.hello.toot: "Hello zaber (role: frontend)! Called from: <com.izaber.wamp.example.hello.toot>"; the callee was handed {"authid":"zaber","role":"frontend","session":',
      '✔ 4. zaber (frontend) registering example.mine: PARALLAX_ERR_PERMISSION_DENIED — role "frontend" may not register "com.izaber.wamp.example.mine"',
      "✔ 5. after wamp.unregister(registration_id) the call answers PARALLAX_ERR_NOT_FOUND",
      "## Publish and subscribe",
      '✔ 6. zaber\'s subscription on test.sub received {"Hello":"World!"} from nexus-service (backend), seq ',
      "## Rosters",
      '✔ 7. roster_query found [{"owner":"nexus-service","data":{"random":"data"}}]; zaber\'s watch heard: joined nexus-service, left nexus-service',
      "## User metadata",
      '✔ 8. metadata_set → version 1; metadata_get → {"random":"data"}; metadata_list → [some.preference.key]; a compare-and-set expecting it absent → conflict; after metadata_delete, get → nothing',
      "## One-time passwords and API keys",
      "✔ 9. wamp.otp_create() → a password valid until ",
      "a new connection logged in with it as zaber (otp); that login minting another OTP: PARALLAX_ERR_PERMISSION_DENIED",
      '✔ 10. wamp.apikeys_create({description: "Purpose of key"}) limited to call com.izaber.wamp.example.call: the key calls it, and publishing with it is PARALLAX_ERR_PERMISSION_DENIED; apikeys_list shows it with its 1 permission',
      "## change_user and delayed login",
      "✔ 11. wamp.change_user('alice', …) on the live connection: whoami → alice; a wrong password for bob → PARALLAX_ERR_AUTH_FAILED, still alice",
      "✔ 12. a client made with no login (AUTORUN = False) answers whoami with PARALLAX_ERR_",
      "after change_user('bob', …): bob",
      "## Chat: alice and bob in a room; mallory tries to post as alice",
      "✔ 13. alice made the moderated room veggie-club, bob joined; bob's listener heard: #3 alice: hi bob | #4 bob: hi alice",
      '✔ 14. mallory\'s post "[alice]: i like pork" reached bob as "#6 mallory: [alice]: i like pork"',
      "✔ 15. alice (moderator) removed mallory: her facet now answers PARALLAX_ERR_REVOKED, rejoining answers PARALLAX_ERR_PERMISSION_DENIED",
      "all 15 steps behaved as described",
    ]);
    expect(code).toBe(0);
  });
});
