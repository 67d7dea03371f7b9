/**
 * The router's role rules (src/services/router/roles.ts): the defaults seed 003 describes, the
 * JSON config and its precise refusals, and the lookup of a role a config does not define.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, ParallaxError } from "../../../src/errors.js";
import { allows, URI_ACTIONS, type UriAction } from "../../../src/login/uri-permissions.js";
import {
  DEFAULT_ROLES,
  MAX_RULES_PER_ROLE,
  readRoleConfig,
  rulesOf,
} from "../../../src/services/router/roles.js";

function refusal(json: unknown): ParallaxError {
  try {
    readRoleConfig(json);
  } catch (err) {
    expect(err).toBeInstanceOf(ParallaxError);
    expect((err as ParallaxError).code).toBe(ErrorCode.BAD_ARGUMENT);
    return err as ParallaxError;
  }
  throw new Error(`accepted ${JSON.stringify(json).slice(0, 80)}`);
}

const mayDo = (role: string, uri: string): UriAction[] =>
  URI_ACTIONS.filter((a) => allows(rulesOf(DEFAULT_ROLES, role), uri, a));

const rule = (uri: string, perms: string, match?: string) => ({ uri, perms, ...(match ? { match } : {}) });

describe("default roles", () => {
  it("makes frontend the default: call, publish and subscribe anywhere, never register", () => {
    expect(DEFAULT_ROLES.defaultRole).toBe("frontend");
    for (const uri of ["com.example.hello", "roster.example.zaber.test", "a"]) {
      expect(mayDo("frontend", uri), uri).toEqual(["call", "publish", "subscribe"]);
    }
  });

  it("lets backend and trust do everything everywhere", () => {
    for (const role of ["backend", "trust"]) {
      expect(mayDo(role, "com.izaber.wamp.example.hello")).toEqual([
        "call",
        "register",
        "publish",
        "subscribe",
      ]);
    }
  });

  it("gives a role the config does not define no rules at all, own properties only", () => {
    for (const role of ["admin", "constructor", "__proto__", "toString", "hasOwnProperty", ""]) {
      expect(rulesOf(DEFAULT_ROLES, role), role).toEqual([]);
      expect(mayDo(role, "com.example"), role).toEqual([]);
    }
  });

  it("is frozen", () => {
    expect(Object.isFrozen(DEFAULT_ROLES)).toBe(true);
    expect(Object.isFrozen(DEFAULT_ROLES.roles)).toBe(true);
    expect(Object.isFrozen(rulesOf(DEFAULT_ROLES, "frontend"))).toBe(true);
  });
});

describe("readRoleConfig", () => {
  it("reads the file shape: rules with letters, match defaulting to exact, most specific wins", () => {
    const config = readRoleConfig({
      defaultRole: "guest",
      roles: {
        guest: [
          rule("com.example", "cs", "prefix"),
          rule("com.example.admin", "", "prefix"),
          rule("com.example.ping", "c"),
        ],
        "ops_team-2": [rule("", "crps", "prefix")],
      },
    });
    expect(config.defaultRole).toBe("guest");
    const guest = rulesOf(config, "guest");
    expect(guest).toHaveLength(3);
    expect(guest[2]).toEqual({
      uri: "com.example.ping",
      match: "exact",
      call: true,
      register: false,
      publish: false,
      subscribe: false,
    });
    expect(allows(guest, "com.example.chat", "subscribe")).toBe(true);
    expect(allows(guest, "com.example.admin.reset", "call")).toBe(false);
    expect(allows(guest, "org.other", "call")).toBe(false);
    expect(allows(rulesOf(config, "ops_team-2"), "any.thing", "register")).toBe(true);
    expect(rulesOf(config, "frontend")).toEqual([]);
    expect(Object.isFrozen(config.roles)).toBe(true);
  });

  it("accepts a role named __proto__ as a plain role, without touching prototypes", () => {
    const config = readRoleConfig(
      JSON.parse('{"defaultRole":"x","roles":{"x":[],"__proto__":[{"uri":"a","perms":"c"}]}}'),
    );
    expect(rulesOf(config, "__proto__")).toHaveLength(1);
    expect(rulesOf(config, "constructor")).toEqual([]);
    expect(({} as Record<string, unknown>).uri).toBeUndefined();
  });

  it("refuses a default role that is not configured", () => {
    expect(refusal({ defaultRole: "admin", roles: { frontend: [] } }).message).toMatch(
      /default role "admin" is not one of the configured roles/,
    );
    expect(refusal({ defaultRole: "constructor", roles: { frontend: [] } }).message).toMatch(/not one of/);
    expect(refusal({ roles: { frontend: [] } }).message).toMatch(/"defaultRole" must be a role name/);
  });

  it("refuses malformed role names", () => {
    for (const name of ["", "Admin", "a b", "a.b", "x".repeat(65), "é"]) {
      expect(refusal({ defaultRole: "ok", roles: { ok: [], [name]: [] } }).message, name).toMatch(
        /role name .* must be 1\.\.64 characters/,
      );
    }
    expect(
      rulesOf(
        readRoleConfig({ defaultRole: "x".repeat(64), roles: { ["x".repeat(64)]: [] } }),
        "x".repeat(64),
      ),
    ).toEqual([]);
  });

  it("refuses bad letters, bad URIs and bad match policies, naming the role and the rule", () => {
    const one = (r: unknown) => ({ defaultRole: "r", roles: { r: [rule("ok", "c"), r] } });
    expect(refusal(one(rule("a.b", "cx"))).message).toMatch(
      /role "r" rule 2: permission letters are c, r, p and s/,
    );
    expect(refusal(one(rule("a..b", "c"))).message).toMatch(/role "r" rule 2: .*empty component/);
    expect(refusal(one(rule("a b", "c", "prefix"))).message).toMatch(/role "r" rule 2: .*whitespace/);
    expect(refusal(one(rule("a#b", "c"))).message).toMatch(/rule 2: .*'#'/);
    expect(refusal(one(rule("x".repeat(256), "c"))).message).toMatch(/rule 2: .*longer than 255/);
    expect(refusal(one(rule("", "c"))).message).toMatch(/rule 2: .*empty/);
    expect(refusal(one(rule("a.b", "c", "glob"))).message).toMatch(
      /rule 2: "match" must be exact, prefix or wildcard/,
    );
    expect(refusal(one({ uri: 7, perms: "c" })).message).toMatch(/rule 2: "uri" must be text/);
    expect(refusal(one({ uri: "a" })).message).toMatch(/rule 2: "perms" must be text/);
    expect(refusal(one({ uri: "a", perms: "c", prems: "c" })).message).toMatch(
      /rule 2: unknown field "prems"/,
    );
    expect(refusal(one("a.b")).message).toMatch(/rule 2 must be a JSON object/);
  });

  it("refuses two rules naming the same pattern", () => {
    const r = {
      defaultRole: "r",
      roles: { r: [rule("a", "c", "prefix"), rule("b", "c"), rule("a", "s", "prefix")] },
    };
    expect(refusal(r).message).toMatch(/rule 3 names prefix "a" again \(rule 1 did\)/);
    // The same URI under another match policy is another pattern.
    expect(
      rulesOf(
        readRoleConfig({ defaultRole: "r", roles: { r: [rule("a", "c", "prefix"), rule("a", "s")] } }),
        "r",
      ),
    ).toHaveLength(2);
  });

  it("refuses more than 256 rules in a role", () => {
    const rules = (n: number) => Array.from({ length: n }, (_, i) => rule(`r${i}`, "c"));
    expect(
      rulesOf(readRoleConfig({ defaultRole: "r", roles: { r: rules(MAX_RULES_PER_ROLE) } }), "r"),
    ).toHaveLength(256);
    expect(refusal({ defaultRole: "r", roles: { r: rules(MAX_RULES_PER_ROLE + 1) } }).message).toMatch(
      /role "r" has 257 rules; at most 256/,
    );
  });

  it("refuses shapes that are not the file's: not objects, no roles, unknown fields, rules not a list", () => {
    expect(refusal(null).message).toMatch(/the role config must be a JSON object/);
    expect(refusal([]).message).toMatch(/must be a JSON object/);
    expect(refusal("frontend").message).toMatch(/must be a JSON object/);
    expect(refusal({ defaultRole: "r" }).message).toMatch(/"roles" must be a JSON object/);
    expect(refusal({ defaultRole: "r", roles: {} }).message).toMatch(/defines no role/);
    expect(refusal({ defaultRole: "r", roles: { r: [] }, extra: 1 }).message).toMatch(
      /unknown field "extra"/,
    );
    expect(refusal({ defaultRole: "r", roles: { r: { uri: "a" } } }).message).toMatch(
      /role "r": its rules must be a list/,
    );
  });
});
