/**
 * API keys limited to URIs (issue 12 §2, seed 003's `apikeys_*` with `perms`): the permissions a
 * password login gives a key come back from `createApiKey` and `listApiKeys` in order, and every
 * service the key's logins attach sees them as `IdentityView.uriPermissions`; no other login
 * carries any. Only password logins mint keys. Malformed permissions get a precise
 * PARALLAX_ERR_BAD_ARGUMENT and store nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519 } from "../../src/cred/ed25519.js";
import { ErrorCode } from "../../src/errors.js";
import { loginWithKey } from "../../src/login/client-login.js";
import { type IdentityView, Perspective, type Service, serviceModule } from "../../src/login/index.js";
import { ruleFromLetters, type UriRule } from "../../src/login/uri-permissions.js";
import { lobby } from "../../src/services/lobby/lobby-service.js";
import { DEFAULT_KEYRING } from "../../src/server.js";
import type { ApiKeyInfo, Identity, UriPermission$Shape } from "../../src/wire/gen/broker.js";
import { UriMatch } from "../../src/wire/gen/broker.js";
import { LobbyMember, type LobbyMember$Server } from "../../src/wire/gen/lobby.js";
import { type Harness, makeHarness, rejection } from "./harness.js";

let h: Harness;
afterEach(() => h?.close());

const PROBE = { service: "probe", perspective: "viewer" };
const MEMBER = { service: "lobby", perspective: "member" };

/** A service that records the IdentityView of every `getPerspectiveForIdentity` and `attached`. */
function recorder() {
  const seen: IdentityView[] = [];
  class Viewer extends Perspective {
    capability() {
      return LobbyMember.server(this as unknown as LobbyMember$Server);
    }
    override attached(_client: unknown, identity: IdentityView): Perspective {
      seen.push(identity);
      return this;
    }
  }
  const service: Service = {
    name: PROBE.service,
    getPerspectiveForIdentity: (_name, identity) => {
      seen.push(identity);
      return new Viewer();
    },
  };
  return { seen, module: serviceModule(service) };
}

async function setUp() {
  const probe = recorder();
  h = await makeHarness({ services: [lobby(), probe.module] });
  await h.addUser("alice", "alice pass", [...DEFAULT_KEYRING, PROBE]);
  const main = await h.login("alice", "alice pass");
  return { probe, main };
}

/** What a login attaching PROBE showed the service (both calls must agree). */
async function viewOf(probe: ReturnType<typeof recorder>, identity: Identity): Promise<IdentityView> {
  const before = probe.seen.length;
  await identity.attach({ ...PROBE, client: null });
  expect(probe.seen.length).toBe(before + 2);
  const [got, attached] = probe.seen.slice(before);
  expect(attached).toBe(got);
  return got as IdentityView;
}

const wire = (r: UriRule): UriPermission$Shape => ({
  uri: r.uri,
  match: { exact: UriMatch.EXACT, prefix: UriMatch.PREFIX, wildcard: UriMatch.WILDCARD }[r.match],
  call: r.call,
  register: r.register,
  publish: r.publish,
  subscribe: r.subscribe,
});

const RULES: UriRule[] = [
  ruleFromLetters("com.example.add", "exact", "c"),
  ruleFromLetters("com.example", "prefix", "cs"),
  ruleFromLetters("com..events", "wildcard", "ps"),
  ruleFromLetters("", "prefix", "s"),
  ruleFromLetters("com.example.backend", "prefix", "crps"),
];

const permissionsOf = (k: ApiKeyInfo) => k.permissions.toArray().map((p) => p.$toObject());

describe("URI-scoped API keys", () => {
  it("keep their permissions in order from createApiKey through listApiKeys to the key's login", async () => {
    const { probe, main } = await setUp();
    const created = await main.identity.createApiKey({
      description: "scoped",
      keyring: [PROBE],
      expiresAt: 0n,
      permissions: RULES.map(wire),
    });
    expect(permissionsOf(created.key)).toEqual(RULES.map(wire));
    const listed = (await main.identity.listApiKeys()).keys.toArray();
    expect(listed.map(permissionsOf)).toEqual([RULES.map(wire)]);

    const viaKey = (await h.connect().root.loginWithApiKey({ key: created.secret })).identity;
    const view = await viewOf(probe, viaKey);
    expect(view.authMethod).toBe("apiKey");
    expect(view.uriPermissions).toEqual(RULES);
    expect(view.keyring).toEqual([PROBE]);
    // The service cannot widen what the key allows for later attachments.
    expect(Object.isFrozen(view.uriPermissions)).toBe(true);
    expect(view.uriPermissions?.every((r) => Object.isFrozen(r))).toBe(true);
    expect(() => (view.uriPermissions as UriRule[]).push(ruleFromLetters("", "prefix", "crps"))).toThrow();
    // The stored rows come back the same through the store (the login's lookup path).
    const stored = await h.store.findApiKey(Number(created.key.id));
    expect(stored?.permissions).toEqual(RULES);
  });

  it("a key made without permissions, and every other kind of login, carry none", async () => {
    const { probe, main } = await setUp();
    const plain = await main.identity.createApiKey({ description: "plain", keyring: [PROBE], expiresAt: 0n });
    expect(plain.key.permissions.getLength()).toBe(0);
    const empty = await main.identity.createApiKey({
      description: "empty list",
      keyring: [PROBE],
      expiresAt: 0n,
      permissions: [],
    });
    const device = generateEd25519();
    await main.identity.addPublicKey({ publicKey: device.publicKey, device: "laptop" });
    const { token } = await main.identity.issueResumeToken({ device: "phone" });
    const { otp } = await main.identity.createOtp();
    const { root } = h.connect();
    const byKey = (await loginWithKey(root, "alice", device)).identity;
    if (byKey === undefined) throw new Error("the registered key did not log in");
    const logins: [string, Identity][] = [
      ["password", main.identity],
      ["apiKey", (await root.loginWithApiKey({ key: plain.secret })).identity],
      ["apiKey", (await root.loginWithApiKey({ key: empty.secret })).identity],
      ["otp", (await root.loginWithOtp({ username: "alice", otp })).identity],
      ["resume", (await root.resume({ token })).identity],
      ["publicKey", byKey],
    ];
    for (const [method, identity] of logins) {
      const view = await viewOf(probe, identity);
      expect({ method: view.authMethod, uriPermissions: view.uriPermissions }).toEqual({
        method,
        uriPermissions: undefined,
      });
      expect("uriPermissions" in view).toBe(false);
    }
  });

  it("are minted only from a password login: API-key and OTP logins are refused and store nothing", async () => {
    const { main } = await setUp();
    const { secret } = await main.identity.createApiKey({
      description: "scoped",
      keyring: [PROBE],
      expiresAt: 0n,
      permissions: [wire(ruleFromLetters("com.example", "prefix", "c"))],
    });
    const { otp } = await main.identity.createOtp();
    const { root } = h.connect();
    const viaKey = (await root.loginWithApiKey({ key: secret })).identity;
    const viaOtp = (await root.loginWithOtp({ username: "alice", otp })).identity;
    for (const [identity, how] of [
      [viaKey, "an API key"],
      [viaOtp, "a one-time password"],
    ] as const) {
      const err = await rejection(
        identity.createApiKey({
          description: "wider",
          keyring: [PROBE],
          expiresAt: 0n,
          permissions: [wire(ruleFromLetters("", "prefix", "crps"))],
        }),
      );
      expect(err.code).toBe(ErrorCode.PERMISSION_DENIED);
      expect(err.message).toBe(`minting an API key needs a password login; this login was made with ${how}`);
    }
    expect((await main.identity.listApiKeys()).keys.getLength()).toBe(1);
  });

  describe("refuse malformed permissions with BAD_ARGUMENT and store nothing", () => {
    const exact = (uri: string, letters = "c"): UriPermission$Shape => ({
      uri,
      match: UriMatch.EXACT,
      call: letters.includes("c"),
      register: letters.includes("r"),
      publish: letters.includes("p"),
      subscribe: letters.includes("s"),
    });
    const many = (n: number) => Array.from({ length: n }, (_, i) => exact(`com.example.p${i}`));
    const cases: [string, UriPermission$Shape[], string][] = [
      ["65 permissions", many(65), "an API key has at most 64 URI permissions; got 65"],
      [
        "an empty component with exact match",
        [exact("com.ok"), exact("a..b")],
        `permission 1's URI pattern "a..b" has an empty component`,
      ],
      ["an empty exact URI", [exact("")], "permission 0's URI pattern is empty"],
      ["whitespace", [exact("a.b c")], `permission 0's URI pattern "a.b c" contains whitespace or '#'`],
      ["a tab", [exact("a.b\tc")], `permission 0's URI pattern "a.b\tc" contains whitespace or '#'`],
      ["'#'", [exact("a.#")], `permission 0's URI pattern "a.#" contains whitespace or '#'`],
      [
        "a 256-character URI",
        [exact("a".repeat(256))],
        "permission 0's URI pattern is longer than 255 characters",
      ],
      [
        "a permission with no action",
        [exact("com.example.add", "")],
        `permission 0 (exact "com.example.add") grants no action: set call, register, publish or subscribe`,
      ],
      [
        "an unknown match policy",
        [{ ...exact("com.example"), match: 7 as UriMatch }],
        "permission 0: match 7 is not exact, prefix or wildcard",
      ],
      [
        "the same pattern twice",
        [exact("com.example", "c"), exact("com.example", "s")],
        `permission 1 repeats the exact pattern "com.example"`,
      ],
    ];
    for (const [what, permissions, message] of cases) {
      it(what, async () => {
        const { main } = await setUp();
        await main.identity.createApiKey({ description: "before", keyring: [PROBE], expiresAt: 0n });
        const before = (await main.identity.listApiKeys()).keys.toArray().map((k) => k.$toObject());
        const err = await rejection(
          main.identity.createApiKey({ description: "bad", keyring: [PROBE], expiresAt: 0n, permissions }),
        );
        expect({ code: err.code, message: err.message }).toEqual({ code: ErrorCode.BAD_ARGUMENT, message });
        expect((await main.identity.listApiKeys()).keys.toArray().map((k) => k.$toObject())).toEqual(before);
      });
    }

    it("64 permissions and a 255-character URI are within the limits", async () => {
      const { main } = await setUp();
      const sixtyFour = many(64);
      sixtyFour[63] = exact("a".repeat(255));
      const { key } = await main.identity.createApiKey({
        description: "full",
        keyring: [PROBE],
        expiresAt: 0n,
        permissions: sixtyFour,
      });
      expect(permissionsOf(key)).toEqual(sixtyFour);
    });

    it("unknown letters and malformed rules through the store path", async () => {
      const { main } = await setUp();
      const id = (await h.store.findIdentityByName("alice"))?.id ?? -1;
      expect(() => ruleFromLetters("com.example", "exact", "cx")).toThrow(
        expect.objectContaining({
          code: ErrorCode.BAD_ARGUMENT,
          message: `permission letters are c, r, p and s; got "cx"`,
        }),
      );
      const init = { identityId: id, description: "raw", keyring: [MEMBER], createdAt: 0, expiresAt: 0 };
      const good = ruleFromLetters("com.example", "exact", "c");
      const bad: [unknown, string][] = [
        [
          { ...good, match: "regex" },
          `createApiKey: permission 0: match must be exact, prefix or wildcard, not "regex"`,
        ],
        [{ ...good, call: "yes" }, "createApiKey: permission 0: call must be true or false"],
        [{ ...good, call: false }, `createApiKey: permission 0 on "com.example" grants no action`],
        [
          { ...good, uri: "a".repeat(256) },
          "createApiKey: permission 0: the URI must be text of at most 255 characters",
        ],
        [{ ...good, uri: 42 }, "createApiKey: permission 0: the URI must be text of at most 255 characters"],
      ];
      let asked = 0;
      for (const [rule, message] of bad) {
        await expect(
          h.store.createApiKey({ ...init, permissions: [rule as UriRule] }, () => {
            asked++;
            return new Uint8Array(32).fill(1);
          }),
        ).rejects.toEqual(expect.objectContaining({ code: ErrorCode.BAD_ARGUMENT, message }));
      }
      expect(asked).toBe(0);
      expect(await h.store.listApiKeys(id)).toEqual([]);
      expect((await main.identity.listApiKeys()).keys.getLength()).toBe(0);
    });
  });
});
