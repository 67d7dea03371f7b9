/**
 * The router's roles (seed 003): each identity has one role ("frontend", "backend", "trust" or a
 * configured name), stored in the router's store and defaulting to the config's `defaultRole`;
 * each role has URI rules deciding where its sessions may call, register, publish and subscribe
 * (the most specific rule matching a URI decides alone: `uri-permissions.ts`).
 *
 * The defaults follow the seed: "registering requires a backend role … most individual users have
 * a frontend role which has pretty restrictive permissions", "registering rosters will require a
 * user with backend level permissions; frontend users can do queries on public records":
 * - `frontend` (the default role): call, publish and subscribe everywhere; never register, so it
 *   can neither offer procedures nor add roster entries, but it can query rosters (a query needs
 *   `subscribe`) and use what backends offer.
 * - `backend`: call, register, publish and subscribe everywhere.
 * - `trust`: everything everywhere too; the name exists because the seed's routers have it
 *   (trusted internal components), so configurations and `whoami` can tell it apart.
 *
 * Invariants:
 * - A `RoleConfig` from `readRoleConfig` is frozen, its `defaultRole` is one of its roles, every
 *   role name matches `ROLE_NAME` (1..64 of a-z, 0-9, '_', '-'), each role has at most
 *   `MAX_RULES_PER_ROLE` rules with well-formed patterns, no two naming the same pattern.
 * - `rulesOf` looks roles up as own properties only ("constructor" or "__proto__" name no rules
 *   unless configured). A role stored for a user that the config does not name (a config edited
 *   after the role was given) has no rules at all: that user's sessions may do nothing until an
 *   operator fixes the role or the config. Failing closed is deliberate: guessing (the default
 *   role, say) could hand a demoted user more than intended.
 *
 * Tests: test/services/router/roles.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  ruleFromLetters,
  URI_MATCHES,
  type UriMatchName,
  type UriRule,
} from "../../login/uri-permissions.js";
import { ROLE_NAME } from "../../store/router-store.js";

export interface RoleConfig {
  /** The role of an identity with none stored. */
  readonly defaultRole: string;
  readonly roles: Readonly<Record<string, readonly UriRule[]>>;
}

/** Rules one role may have: enough for any hand-written policy, few enough to scan per action. */
export const MAX_RULES_PER_ROLE = 256;
/** Roles one config may define. */
export const MAX_ROLES = 256;

function everywhere(letters: string): readonly UriRule[] {
  return Object.freeze([Object.freeze(ruleFromLetters("", "prefix", letters))]);
}

export const DEFAULT_ROLES: RoleConfig = freezeConfig("frontend", {
  frontend: everywhere("cps"),
  backend: everywhere("crps"),
  trust: everywhere("crps"),
});

/** Whether `name` is a well-formed role name. */
export function isRoleName(name: unknown): name is string {
  return typeof name === "string" && ROLE_NAME.test(name);
}

/** The rules of `role`; none for a role the config does not define (see the header). */
export function rulesOf(config: RoleConfig, role: string): readonly UriRule[] {
  return Object.hasOwn(config.roles, role) ? (config.roles[role] ?? []) : [];
}

/**
 * A role config from its JSON form (a parsed file):
 * `{ "defaultRole": "frontend", "roles": { "frontend": [ {"uri": "com.example", "match": "prefix", "perms": "cs"} ] } }`.
 * `match` defaults to "exact"; `perms` are Nexus' letters c, r, p, s ("" denies everything on
 * the pattern, which overrides broader rules). Unknown fields are refused, so a typo cannot
 * silently drop a rule. Every fault is PARALLAX_ERR_BAD_ARGUMENT naming where it is.
 */
export function readRoleConfig(json: unknown): RoleConfig {
  const top = object(json, "the role config");
  onlyKeys(top, ["defaultRole", "roles"], "the role config");
  const rolesJson = object(top.roles, 'the role config\'s "roles"');
  const entries = Object.entries(rolesJson);
  if (entries.length === 0) throw bad('the role config\'s "roles" defines no role');
  if (entries.length > MAX_ROLES) {
    throw bad(`the role config defines ${entries.length} roles; at most ${MAX_ROLES}`);
  }
  const roles: Record<string, readonly UriRule[]> = Object.create(null);
  for (const [name, rulesJson] of entries) {
    if (!isRoleName(name)) {
      throw bad(`role name ${JSON.stringify(name)} must be 1..64 characters of a-z, 0-9, '_' and '-'`);
    }
    roles[name] = readRules(name, rulesJson);
  }
  const defaultRole = top.defaultRole;
  if (typeof defaultRole !== "string") throw bad('the role config\'s "defaultRole" must be a role name');
  if (!Object.hasOwn(roles, defaultRole)) {
    throw bad(`the default role ${JSON.stringify(defaultRole)} is not one of the configured roles`);
  }
  return freezeConfig(defaultRole, roles);
}

function readRules(role: string, json: unknown): readonly UriRule[] {
  if (!Array.isArray(json)) throw bad(`role "${role}": its rules must be a list`);
  if (json.length > MAX_RULES_PER_ROLE) {
    throw bad(`role "${role}" has ${json.length} rules; at most ${MAX_RULES_PER_ROLE}`);
  }
  const seen = new Map<string, number>();
  return json.map((ruleJson: unknown, i) => {
    const where = `role "${role}" rule ${i + 1}`;
    const r = object(ruleJson, where);
    onlyKeys(r, ["uri", "match", "perms"], where);
    if (typeof r.uri !== "string") throw bad(`${where}: "uri" must be text`);
    const match = r.match ?? "exact";
    if (typeof match !== "string" || !(URI_MATCHES as readonly string[]).includes(match)) {
      throw bad(`${where}: "match" must be exact, prefix or wildcard; got ${JSON.stringify(r.match)}`);
    }
    if (typeof r.perms !== "string") throw bad(`${where}: "perms" must be text of the letters c, r, p, s`);
    let rule: UriRule;
    try {
      rule = ruleFromLetters(r.uri, match as UriMatchName, r.perms);
    } catch (err) {
      if (err instanceof ParallaxError) throw bad(`${where}: ${err.message}`);
      throw err;
    }
    const key = `${rule.match} ${rule.uri}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw bad(
        `${where} names ${rule.match} "${rule.uri}" again (rule ${earlier} did): one rule per pattern`,
      );
    }
    seen.set(key, i + 1);
    return Object.freeze(rule);
  });
}

function freezeConfig(defaultRole: string, roles: Record<string, readonly UriRule[]>): RoleConfig {
  const frozen: Record<string, readonly UriRule[]> = Object.create(null);
  for (const [name, rules] of Object.entries(roles)) frozen[name] = Object.freeze([...rules]);
  return Object.freeze({ defaultRole, roles: Object.freeze(frozen) });
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw bad(`${what}: unknown field ${JSON.stringify(k)}`);
  }
}

function bad(message: string): ParallaxError {
  return new ParallaxError(ErrorCode.BAD_ARGUMENT, message);
}
