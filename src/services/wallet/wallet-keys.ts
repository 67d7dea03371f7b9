/**
 * The wallet's perspective key, shared by the service, the default keyring and clients
 * (`attach(identity, WALLET_OWNER, watcher)`). Browser-safe.
 *
 * Tests: test/services/wallet/wallet-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { WalletPerspective } from "../../wire/gen/wallet.js";

export const WALLET_OWNER = perspectiveKey("wallet", "owner", WalletPerspective);
