/** The store: the `BrokerStore` and `WalletStore` contracts and their embedded SQLite implementation. */
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
  PasswordChangeResult,
  PendingKind,
  PendingRecord,
  PublicKeyRecord,
  ResumeTokenRecord,
  StoredVerifier,
  WalletInput,
  WalletRecord,
  WalletStore,
  WalletUpdateResult,
} from "./broker-store.js";
export { LATEST_VERSION, type Migration, MIGRATIONS } from "./migrations.js";
export {
  BUSY_TIMEOUT_MS,
  MAX_WALLET_BYTES,
  MAX_WALLET_HMAC_BYTES,
  SqliteBrokerStore,
  type SqliteStoreOptions,
  type StoreSettings,
} from "./sqlite-store.js";
