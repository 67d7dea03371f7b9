/**
 * `/wallet`: the sync status of the user's wallet, live (WalletPage).
 *
 * Tests: test/web/wallet.test.ts
 */
import { runPage } from "../app/page.js";
import { startReconnecting } from "../app/session.js";
import { WalletPage } from "../wallet/wallet-page.js";

runPage({ start: startReconnecting, render: (session) => WalletPage.show(session) });
