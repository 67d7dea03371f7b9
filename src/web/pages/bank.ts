/**
 * `/bank`: accounts with live balances, transfers, statements, and the facets an employee's role
 * grants (BankPage).
 *
 * Tests: test/web/bank.test.ts
 */
import { runPage } from "../app/page.js";
import { startReconnecting } from "../app/session.js";
import { BankPage } from "../bank/bank-page.js";

runPage({ start: startReconnecting, render: (session) => BankPage.show(session) });
