/**
 * The bank's perspective keys, shared by the service, the default keyring and clients
 * (`attach(identity, BANK_CUSTOMER)`). Browser-safe. The banker's pair belongs on bank staff's
 * keyrings only.
 *
 * Tests: test/services/bank/bank-service.test.ts
 */
import { perspectiveKey } from "../../login/perspective-key.js";
import { Banker, Customer, Employee } from "../../wire/gen/bank.js";

export const BANK_CUSTOMER = perspectiveKey("bank", "customer", Customer);
export const BANK_EMPLOYEE = perspectiveKey("bank", "employee", Employee);
export const BANK_BANKER = perspectiveKey("bank", "banker", Banker);
