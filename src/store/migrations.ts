/**
 * The store's schema, as an ordered list of migrations.
 *
 * Invariants:
 * - `PRAGMA user_version` is the number of the last migration applied; 0 is an empty file.
 * - Versions run 1, 2, 3, ... without gaps. A migration, once released, is never edited: a schema
 *   change is a new entry at the end.
 * - Each migration runs in its own IMMEDIATE transaction together with the `user_version` bump,
 *   so a crash leaves the file at the previous version or the next, never in between, and two
 *   processes opening the same file at once cannot both apply one migration.
 * - A file whose version is newer than the last one known here is refused (STORAGE): older code
 *   must not write to a schema it does not understand.
 *
 * Tests: test/store/migrations.test.ts
 */
import type Database from "better-sqlite3";
import { ErrorCode, ParallaxError } from "../errors.js";
import { nameKey } from "./name-key.js";

export interface Migration {
  readonly version: number;
  readonly description: string;
  /** SQL run as one script; it must not open or close transactions itself. */
  readonly up: string;
}

/** The verifier columns shared by `identities` and `pending`, and the check that they are all NULL or all set. */
const VERIFIER_COLUMNS = `
  salt BLOB,
  stored_key BLOB,
  server_key BLOB,
  kdf_algorithm TEXT,
  kdf_memory_kib INTEGER,
  kdf_iterations INTEGER,
  kdf_parallelism INTEGER`;
const VERIFIER_CHECK = `
  CHECK ((salt IS NULL) = (stored_key IS NULL)
     AND (salt IS NULL) = (server_key IS NULL)
     AND (salt IS NULL) = (kdf_algorithm IS NULL)
     AND (salt IS NULL) = (kdf_memory_kib IS NULL)
     AND (salt IS NULL) = (kdf_iterations IS NULL)
     AND (salt IS NULL) = (kdf_parallelism IS NULL))`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "identities, credentials, tokens, pending approvals, audit log, server secret",
    up: `
CREATE TABLE identities (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  ${VERIFIER_COLUMNS},
  epoch INTEGER NOT NULL DEFAULT 0,
  suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
  created_at INTEGER NOT NULL,
  ${VERIFIER_CHECK}
);

CREATE TABLE keyrings (
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  service TEXT NOT NULL,
  perspective TEXT NOT NULL,
  PRIMARY KEY (identity_id, service, perspective)
) WITHOUT ROWID;

CREATE TABLE public_keys (
  public_key BLOB PRIMARY KEY,
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  device TEXT NOT NULL,
  added_at INTEGER NOT NULL
);
CREATE INDEX public_keys_by_identity ON public_keys(identity_id);

CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  description TEXT NOT NULL,
  secret_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX api_keys_by_identity ON api_keys(identity_id);

CREATE TABLE api_key_keyrings (
  api_key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  service TEXT NOT NULL,
  perspective TEXT NOT NULL,
  PRIMARY KEY (api_key_id, service, perspective)
) WITHOUT ROWID;

CREATE TABLE otps (
  otp_hash BLOB PRIMARY KEY,
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX otps_by_identity ON otps(identity_id);

CREATE TABLE resume_tokens (
  token_hash BLOB PRIMARY KEY,
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  device TEXT NOT NULL,
  keyring TEXT,
  expires_at INTEGER NOT NULL
);
CREATE INDEX resume_tokens_by_identity ON resume_tokens(identity_id);

CREATE TABLE pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('signUp', 'deviceKey')),
  username TEXT NOT NULL,
  ${VERIFIER_COLUMNS},
  public_key BLOB,
  device TEXT NOT NULL,
  remote_address TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
  reason TEXT NOT NULL DEFAULT '',
  ${VERIFIER_CHECK}
);
CREATE INDEX pending_open ON pending(state, expires_at);
CREATE INDEX pending_by_username ON pending(username, state);

-- No foreign key on identity_id: the log keeps what happened even to ids that never existed
-- (a failed login) or are gone.
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  identity_id INTEGER,
  username TEXT NOT NULL,
  remote_address TEXT NOT NULL,
  detail TEXT NOT NULL
);

CREATE TABLE server_secret (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  secret BLOB NOT NULL CHECK (length(secret) = 32)
);
`,
  },
  {
    version: 2,
    description: "wallets: each identity's encrypted wallet, its sequence and its HMAC",
    up: `
CREATE TABLE wallets (
  identity_id INTEGER PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
  sequence INTEGER NOT NULL CHECK (sequence >= 1),
  encrypted_wallet BLOB NOT NULL,
  hmac BLOB NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 3,
    description:
      "names compared by their folded key; device requests bound to the identity they were filed for; resume-token families for rotation",
    // `parallax_name_key` (name-key.ts) is registered on the connection by `migrate`.
    // A file holding two names that fold to one key (`Alice` and `alice`) fails this migration on
    // the unique index, and stays at version 2 untouched: rename one with an older Parallax first.
    up: `
ALTER TABLE identities ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE identities SET name_key = parallax_name_key(name);
CREATE UNIQUE INDEX identities_by_name_key ON identities(name_key);

ALTER TABLE pending ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE pending SET name_key = parallax_name_key(username);
CREATE INDEX pending_by_name_key ON pending(name_key, state);
-- Device requests: the identity the name belonged to when filed (NULL: none; never approvable).
ALTER TABLE pending ADD COLUMN identity_id INTEGER;
-- Requests from before this version were not bound to an owner: none of them may be approved now.
UPDATE pending SET state = 'rejected', reason = 'expired when Parallax began binding device requests to their owner'
  WHERE kind = 'deviceKey' AND state = 'pending';

ALTER TABLE resume_tokens ADD COLUMN family BLOB NOT NULL DEFAULT X'';
UPDATE resume_tokens SET family = token_hash;
-- 1 once rotated: presenting it again revokes its family.
ALTER TABLE resume_tokens ADD COLUMN spent INTEGER NOT NULL DEFAULT 0 CHECK (spent IN (0, 1));
CREATE INDEX resume_tokens_by_family ON resume_tokens(identity_id, family);
CREATE INDEX otps_by_expiry ON otps(expires_at);
CREATE INDEX resume_tokens_by_expiry ON resume_tokens(expires_at);
`,
  },
  {
    version: 4,
    description:
      "the bank (seed 001): accounts, organizations, roles, employees and their grant epochs, transfers and holds, payment requests, the hash-chained journal",
    // STRICT tables: a value of the wrong type is refused, never coerced. Amounts and totals are
    // 64-bit integers, read and written as bigint (`sqlite/bank.ts`). The CHECKs restate the
    // ledger's invariants so that even a bug in the repository cannot store a broken row.
    up: `
CREATE TABLE bank_orgs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL UNIQUE,
  approval_threshold INTEGER NOT NULL DEFAULT 0 CHECK (approval_threshold >= 0),
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE bank_accounts (
  number INTEGER PRIMARY KEY,
  currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('private', 'organization', 'cash')),
  owner_id INTEGER REFERENCES identities(id),
  org_id INTEGER REFERENCES bank_orgs(id),
  no_overdraft INTEGER NOT NULL CHECK (no_overdraft IN (0, 1)),
  debits_posted INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
  credits_posted INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
  debits_pending INTEGER NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
  credits_pending INTEGER NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
  created_at INTEGER NOT NULL,
  CHECK ((owner_id IS NOT NULL) = (kind = 'private')),
  CHECK ((org_id IS NOT NULL) = (kind = 'organization')),
  CHECK (kind <> 'cash' OR no_overdraft = 0),
  -- debits (posted + pending) <= credits posted, written so that no term can overflow
  CHECK (no_overdraft = 0 OR debits_pending <= credits_posted - debits_posted)
) STRICT;
CREATE UNIQUE INDEX bank_cash_accounts ON bank_accounts(currency) WHERE kind = 'cash';
CREATE INDEX bank_accounts_by_owner ON bank_accounts(owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX bank_accounts_by_org ON bank_accounts(org_id) WHERE org_id IS NOT NULL;

CREATE TABLE bank_roles (
  org_id INTEGER NOT NULL REFERENCES bank_orgs(id),
  name TEXT NOT NULL,
  can_view INTEGER NOT NULL CHECK (can_view IN (0, 1)),
  can_deposit INTEGER NOT NULL CHECK (can_deposit IN (0, 1)),
  can_pay INTEGER NOT NULL CHECK (can_pay IN (0, 1)),
  per_payment_limit INTEGER NOT NULL CHECK (per_payment_limit >= 0),
  per_day_limit INTEGER NOT NULL CHECK (per_day_limit >= 0),
  can_approve INTEGER NOT NULL CHECK (can_approve IN (0, 1)),
  can_manage INTEGER NOT NULL CHECK (can_manage IN (0, 1)),
  PRIMARY KEY (org_id, name)
) STRICT, WITHOUT ROWID;

-- One row per (organization, identity) ever employed. role NULL: removed; the row stays so that
-- the grant epoch only ever grows (a re-hired employee never gets back an epoch handed out before).
CREATE TABLE bank_employees (
  org_id INTEGER NOT NULL REFERENCES bank_orgs(id),
  identity_id INTEGER NOT NULL REFERENCES identities(id),
  role TEXT,
  grant_epoch INTEGER NOT NULL CHECK (grant_epoch >= 1),
  PRIMARY KEY (org_id, identity_id),
  FOREIGN KEY (org_id, role) REFERENCES bank_roles(org_id, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX bank_employees_by_identity ON bank_employees(identity_id);

-- Every applied transfer, hold and hold event, by its 16-byte id, forever. A rowid table (the id
-- is a unique index): rows land in insertion order and only the small index entries land at
-- random places, so a group commit dirties far fewer pages than a table ordered by random ids.
-- Its CHECKs spell lists out with OR: an IN list of three or more builds a temporary table on
-- every insert.
-- hold_state and expires_at: holdOpened rows only; hold_id: the hold a post, void or expiry closes.
-- limit_org_id, limit_identity_id: the employee whose per-day limit the row counts against.
CREATE TABLE bank_transfers (
  id BLOB PRIMARY KEY CHECK (length(id) = 16),
  kind TEXT NOT NULL CHECK (kind = 'single' OR kind = 'holdOpened' OR kind = 'holdPosted'
    OR kind = 'holdVoided' OR kind = 'holdExpired'),
  debit_account INTEGER NOT NULL REFERENCES bank_accounts(number),
  credit_account INTEGER NOT NULL REFERENCES bank_accounts(number),
  amount INTEGER NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  memo TEXT NOT NULL,
  at INTEGER NOT NULL,
  journal_seq INTEGER NOT NULL,
  hold_id BLOB REFERENCES bank_transfers(id),
  hold_state TEXT CHECK (hold_state = 'open' OR hold_state = 'posted' OR hold_state = 'voided'
    OR hold_state = 'expired'),
  expires_at INTEGER,
  limit_org_id INTEGER,
  limit_identity_id INTEGER,
  CHECK (debit_account <> credit_account),
  CHECK ((kind = 'holdOpened') = (hold_state IS NOT NULL)),
  CHECK ((kind = 'holdOpened') = (expires_at IS NOT NULL)),
  CHECK ((kind = 'holdPosted' OR kind = 'holdVoided' OR kind = 'holdExpired') = (hold_id IS NOT NULL))
) STRICT;
CREATE INDEX bank_open_holds ON bank_transfers(expires_at) WHERE hold_state = 'open';
CREATE UNIQUE INDEX bank_hold_closed_once ON bank_transfers(hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX bank_transfers_by_limit ON bank_transfers(limit_org_id, limit_identity_id, at)
  WHERE limit_identity_id IS NOT NULL;

-- Payments above an organization's approval threshold, waiting for (or decided by) a checker.
CREATE TABLE bank_payment_requests (
  id BLOB PRIMARY KEY CHECK (length(id) = 16),
  org_id INTEGER NOT NULL REFERENCES bank_orgs(id),
  maker_id INTEGER NOT NULL REFERENCES identities(id),
  debit_account INTEGER NOT NULL REFERENCES bank_accounts(number),
  credit_account INTEGER NOT NULL REFERENCES bank_accounts(number),
  amount INTEGER NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  memo TEXT NOT NULL,
  at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
  reason TEXT NOT NULL DEFAULT '',
  decided_by INTEGER REFERENCES identities(id),
  decided_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX bank_payment_requests_by_org ON bank_payment_requests(org_id, state);
CREATE INDEX bank_payment_requests_by_maker ON bank_payment_requests(org_id, maker_id, at)
  WHERE state = 'pending';

-- Append-only, hash-chained (the encoding is in src/store/sqlite/bank-journal.ts).
-- debit_account, credit_account: the journal's "from" and "to".
CREATE TABLE bank_journal (
  seq INTEGER PRIMARY KEY CHECK (seq >= 1),
  transfer_id BLOB NOT NULL,
  kind TEXT NOT NULL,
  debit_account INTEGER NOT NULL,
  credit_account INTEGER NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  at INTEGER NOT NULL,
  identity_id INTEGER NOT NULL,
  perspective TEXT NOT NULL,
  facet TEXT NOT NULL,
  maker_id INTEGER,
  memo TEXT NOT NULL,
  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
  hash BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX bank_journal_by_debit ON bank_journal(debit_account, at);
CREATE INDEX bank_journal_by_credit ON bank_journal(credit_account, at);
`,
  },
  {
    version: 5,
    description: "the Go server (seed 004): challenges, games, their moves, ratings",
    // Terms, rules and the service's state are JSON documents the service validates; the columns
    // the store decides on (who sits where, the phase, the move numbers) are typed and checked.
    up: `
CREATE TABLE go_challenges (
  id INTEGER PRIMARY KEY,
  challenger_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  opponent_id INTEGER REFERENCES identities(id) ON DELETE CASCADE,
  terms TEXT NOT NULL CHECK (json_valid(terms)),
  created_at INTEGER NOT NULL,
  CHECK (opponent_id IS NULL OR opponent_id <> challenger_id)
) STRICT;
CREATE INDEX go_challenges_by_challenger ON go_challenges(challenger_id);
CREATE TABLE go_games (
  id INTEGER PRIMARY KEY,
  black_id INTEGER NOT NULL REFERENCES identities(id),
  white_id INTEGER NOT NULL REFERENCES identities(id),
  rules TEXT NOT NULL CHECK (json_valid(rules)),
  time TEXT NOT NULL CHECK (json_valid(time)),
  ranked INTEGER NOT NULL CHECK (ranked = 0 OR ranked = 1),
  phase TEXT NOT NULL CHECK (phase = 'playing' OR phase = 'scoring' OR phase = 'finished'),
  result TEXT CHECK ((phase = 'finished') = (result IS NOT NULL)),
  state TEXT NOT NULL CHECK (json_valid(state)),
  move_count INTEGER NOT NULL DEFAULT 0 CHECK (move_count >= 0),
  created_at INTEGER NOT NULL,
  ended_at INTEGER CHECK ((phase = 'finished') = (ended_at IS NOT NULL)),
  CHECK (black_id <> white_id OR ranked = 0)
) STRICT;
CREATE INDEX go_games_by_black ON go_games(black_id, id);
CREATE INDEX go_games_by_white ON go_games(white_id, id);
CREATE INDEX go_games_unfinished ON go_games(phase) WHERE phase <> 'finished';
CREATE TABLE go_moves (
  game_id INTEGER NOT NULL REFERENCES go_games(id) ON DELETE CASCADE,
  number INTEGER NOT NULL CHECK (number >= 1),
  color TEXT NOT NULL CHECK (color = 'black' OR color = 'white'),
  x INTEGER CHECK (x >= 0 AND x < 25),
  y INTEGER CHECK (y >= 0 AND y < 25),
  at INTEGER NOT NULL,
  PRIMARY KEY (game_id, number),
  CHECK ((x IS NULL) = (y IS NULL))
) STRICT, WITHOUT ROWID;
CREATE TABLE go_ratings (
  identity_id INTEGER PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
  rating REAL NOT NULL,
  deviation REAL NOT NULL CHECK (deviation > 0),
  volatility REAL NOT NULL CHECK (volatility > 0),
  games INTEGER NOT NULL CHECK (games >= 0)
) STRICT;
`,
  },
  {
    version: 6,
    description: "the router (seed 003): API keys limited by URI, roles, per-user metadata",
    up: `
CREATE TABLE api_key_permissions (
  api_key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  position INTEGER NOT NULL CHECK (position >= 0),
  uri TEXT NOT NULL CHECK (length(uri) <= 255),
  match TEXT NOT NULL CHECK (match = 'exact' OR match = 'prefix' OR match = 'wildcard'),
  perms TEXT NOT NULL CHECK (perms NOT GLOB '*[^crps]*'),
  PRIMARY KEY (api_key_id, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE router_roles (
  identity_id INTEGER PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (length(role) BETWEEN 1 AND 64)
) STRICT;
CREATE TABLE user_metadata (
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  value TEXT NOT NULL CHECK (json_valid(value)),
  version INTEGER NOT NULL CHECK (version >= 1),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (identity_id, key)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 7,
    description:
      "chat (issue 12): rooms, memberships with their epochs, bans, messages, invitations, inboxes",
    // Lists are spelled with OR (an IN list builds a temporary table per insert); text lengths are
    // in characters, as the service counts them. Messages keep the author's name as it was.
    up: `
CREATE TABLE chat_rooms (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9._-]*'),
  name_key TEXT NOT NULL UNIQUE CHECK (name_key = lower(name)),
  kind TEXT NOT NULL CHECK (kind = 'public' OR kind = 'inviteOnly' OR kind = 'moderated'),
  topic TEXT NOT NULL CHECK (length(topic) <= 200),
  owner_id INTEGER NOT NULL REFERENCES identities(id),
  created_at INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) STRICT;
CREATE INDEX chat_rooms_by_owner ON chat_rooms(owner_id);

-- One row per (room, user) ever a member; active = 0 once they left or were removed. The epoch
-- grows on every join and every end, so a facet minted under an older one is dead.
CREATE TABLE chat_members (
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id),
  identity_id INTEGER NOT NULL REFERENCES identities(id),
  moderator INTEGER NOT NULL DEFAULT 0 CHECK (moderator = 0 OR moderator = 1),
  muted_until INTEGER CHECK (muted_until IS NULL OR muted_until >= 0),
  last_read INTEGER NOT NULL DEFAULT 0 CHECK (last_read >= 0),
  epoch INTEGER NOT NULL CHECK (epoch >= 1),
  active INTEGER NOT NULL CHECK (active = 0 OR active = 1),
  joined_at INTEGER NOT NULL,
  PRIMARY KEY (room_id, identity_id),
  CHECK (active = 1 OR (moderator = 0 AND muted_until IS NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX chat_members_by_identity ON chat_members(identity_id) WHERE active = 1;

-- Members removed from moderated rooms: they cannot join again.
CREATE TABLE chat_bans (
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id),
  identity_id INTEGER NOT NULL REFERENCES identities(id),
  by_id INTEGER NOT NULL REFERENCES identities(id),
  reason TEXT NOT NULL CHECK (length(reason) <= 200),
  at INTEGER NOT NULL,
  PRIMARY KEY (room_id, identity_id)
) STRICT, WITHOUT ROWID;

-- No foreign key on author_id: history keeps what was said, by the name it was said under.
CREATE TABLE chat_messages (
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id),
  seq INTEGER NOT NULL CHECK (seq >= 1),
  author_id INTEGER NOT NULL,
  author_name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind = 'text' OR kind = 'joined' OR kind = 'left' OR kind = 'removed'
    OR kind = 'muted' OR kind = 'unmuted'),
  text TEXT NOT NULL CHECK (length(text) <= 4000 AND (kind <> 'text' OR length(text) >= 1)),
  at INTEGER NOT NULL,
  PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;

-- invitee_id NULL: a bearer invitation. used_at set once accepted (by used_by).
CREATE TABLE chat_invitations (
  id INTEGER PRIMARY KEY,
  room_id INTEGER NOT NULL REFERENCES chat_rooms(id),
  inviter_id INTEGER NOT NULL REFERENCES identities(id),
  invitee_id INTEGER REFERENCES identities(id),
  created_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by INTEGER REFERENCES identities(id),
  CHECK ((used_at IS NULL) = (used_by IS NULL)),
  CHECK (invitee_id IS NULL OR used_by IS NULL OR used_by = invitee_id),
  CHECK (invitee_id IS NULL OR invitee_id <> inviter_id)
) STRICT;
CREATE INDEX chat_invitations_open_by_invitee ON chat_invitations(invitee_id) WHERE used_at IS NULL;
CREATE INDEX chat_invitations_open_by_inviter ON chat_invitations(room_id, inviter_id)
  WHERE used_at IS NULL;

CREATE TABLE chat_inbox (
  identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 1),
  sender_id INTEGER NOT NULL,
  sender_name TEXT NOT NULL,
  text TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 4000),
  at INTEGER NOT NULL,
  PRIMARY KEY (identity_id, seq)
) STRICT, WITHOUT ROWID;
`,
  },
];

/** The version a fully migrated file has. */
export const LATEST_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

function userVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/** Throws unless `migrations` is numbered 1, 2, 3, ... in order. */
export function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new ParallaxError(
        ErrorCode.STORAGE,
        `store migration list is broken: entry ${i} has version ${m.version}, expected ${i + 1}`,
      );
    }
  });
}

/**
 * Brings `db` to the latest version, one transaction per migration, and returns the version.
 * Fails with STORAGE if the file is newer than this code. `migrations` is the full list in
 * production; tests pass a prefix of it (`MIGRATIONS.slice(0, 1)`) to build a file at an older
 * version and check that opening it upgrades it.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  checkMigrations(migrations);
  // Migrations fold names with the same function the code compares them with.
  db.function("parallax_name_key", { deterministic: true }, (name: unknown) => nameKey(String(name)));
  const latest = migrations.at(-1)?.version ?? 0;
  const refuseNewer = (found: number): void => {
    if (found > latest) {
      throw new ParallaxError(
        ErrorCode.STORAGE,
        `store schema version ${found} is newer than this Parallax knows (${latest}); ` +
          "upgrade Parallax or open another file",
      );
    }
  };
  refuseNewer(userVersion(db));
  for (const m of migrations) {
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated meanwhile.
      const current = userVersion(db);
      refuseNewer(current);
      if (current >= m.version) return;
      db.exec(m.up);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return userVersion(db);
}
