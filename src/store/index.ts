/** The store: the `BrokerStore` contract and its embedded SQLite implementation. */
export type {
  ApiKeyRecord,
  AuditEntry,
  AuditKind,
  AuditRecord,
  BrokerStore,
  Decision,
  IdentityRecord,
  KdfParams,
  KeyringPair,
  PendingKind,
  PendingRecord,
  PublicKeyRecord,
  ResumeTokenRecord,
  StoredVerifier,
} from "./broker-store.js";
export { LATEST_VERSION, type Migration, MIGRATIONS } from "./migrations.js";
export {
  BUSY_TIMEOUT_MS,
  SqliteBrokerStore,
  type SqliteStoreOptions,
  type StoreSettings,
} from "./sqlite-store.js";
