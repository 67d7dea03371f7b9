@0x81faf097002cf9df;
# The bank (seed 001): a double-entry ledger on capabilities.
#
# Money moves only between accounts, in integer minor units of one currency: every transfer
# debits one account and credits another by the same amount, so per currency the sum of all
# balances is always zero (a deposit of cash comes from the bank's own cash account of that
# currency). Who pays is never an argument: it is the capability the call is made on — a
# customer's PrivateAccount, or an employee's Payer facet of an organization's account. A payee
# is named by its account number: that names where money goes, never who acts.
#
# Every transfer carries a client-chosen 16-byte id. Sending the same id again with the same
# fields answers `exists` with the original receipt, forever (the id lives with the transfer);
# the same id with other fields answers `existsWithDifferent` naming the field. So a client may
# resend after any dropped connection: a transfer applies exactly once. Refusals that depend on
# the ledger (insufficient funds, a limit) are not remembered: a resend is decided again.
#
# Domain outcomes are the `TransferOutcome` union; errors are for malformed input only
# (PARALLAX_ERR_BAD_ARGUMENT: an id that is not 16 bytes, a zero amount, an unknown currency code,
# a batch over its limit) and for authority (PARALLAX_ERR_REVOKED, PARALLAX_ERR_PERMISSION_DENIED).

using Broker = import "broker.capnp";

enum AccountKind {
  private @0;       # a customer's own account
  organization @1;  # owned by an organization, reached by its employees' facets
  cash @2;          # the bank's cash account of one currency: deposits come from it
}

struct AccountInfo {
  number @0 :UInt64;            # the account number payees are named by
  currency @1 :Text;            # ISO 4217-style code, 3 upper-case letters
  name @2 :Text;
  kind @3 :AccountKind;
  balance @4 :Int64;            # credits posted - debits posted, in minor units
  pendingDebits @5 :UInt64;     # reserved by open holds
  pendingCredits @6 :UInt64;
  noOverdraft @7 :Bool;         # debits must not exceed credits (posted + pending)
}

struct Transfer {
  # What a payer asks for. The debit account is the capability the call is made on.
  id @0 :Data;                  # 16 bytes, chosen by the client, unique forever
  to @1 :UInt64;                # the credit account's number
  amount @2 :UInt64;            # minor units, > 0
  currency @3 :Text;            # must be both accounts' currency
  memo @4 :Text;                # at most 140 characters, kept in the journal
}

struct Receipt {
  id @0 :Data;
  from @1 :UInt64;
  to @2 :UInt64;
  amount @3 :UInt64;
  currency @4 :Text;
  at @5 :Int64;                 # ms since the epoch, the bank's clock
  journalSeq @6 :UInt64;        # the journal entry that recorded it
  kind @7 :TransferKind;
}

enum TransferKind {
  single @0;
  holdOpened @1;                # two-phase: funds reserved
  holdPosted @2;
  holdVoided @3;
  holdExpired @4;
}

enum TransferField {
  to @0;
  amount @1;
  currency @2;
  memo @3;
  from @4;
  kind @5;
}

struct TransferOutcome {
  union {
    applied @0 :Receipt;                    # committed and durable
    exists @1 :Receipt;                     # a resend of a transfer applied before: nothing changed
    existsWithDifferent @2 :TransferField;  # this id was used for a different transfer
    insufficientFunds @3 :UInt64;           # the amount available to this debit (posted + pending)
    limitExceeded @4 :Limit;                # an employee's per-payment or per-day limit
    pendingApproval @5 :PendingPayment;     # above the organization's threshold: waits for a checker
    accountNotFound @6 :UInt64;             # the account number named
    currencyMismatch @7 :Text;              # the account's currency (no cross-currency transfers)
    sameAccount @8 :Void;                   # debit and credit are one account
    overflow @9 :Void;                      # a 64-bit total would overflow
    linkedEventFailed @10 :Void;            # batches: another leg failed, so this one did not apply
    holdNotOpen @11 :Text;                  # posting or voiding a hold already posted, voided or expired
  }
}

struct Limit {
  kind @0 :LimitKind;
  limit @1 :UInt64;
  used @2 :UInt64;                          # per day: spent today before this payment
}

enum LimitKind {
  perPayment @0;
  perDay @1;
}

struct StatementEntry {
  journalSeq @0 :UInt64;
  transferId @1 :Data;
  at @2 :Int64;
  counterparty @3 :UInt64;                  # the other account's number
  amount @4 :Int64;                         # + credit, - debit (pending holds are not entries)
  balance @5 :Int64;                        # the running balance after this entry
  memo @6 :Text;
  kind @7 :TransferKind;
}

struct Statement {
  # One consistent snapshot: opening + sum(entries) = closing = the balance at `asOf`.
  account @0 :UInt64;
  from @1 :Int64;
  to @2 :Int64;
  opening @3 :Int64;
  entries @4 :List(StatementEntry);
  closing @5 :Int64;
  asOf @6 :Int64;
  truncated @7 :Bool;                       # more entries than `maxStatementEntries`: ask a shorter range
}

interface AccountListener {
  # Implemented by clients: told of balance changes of an account they watch.
  changed @0 (account :AccountInfo, receipt :Receipt) -> ();
  dropped @1 (missed :UInt32) -> ();        # fell behind: re-read the balance
}

interface AccountView {
  # Reading one account: its balance, statement and live changes. Held by its owner, or by an
  # employee whose role has `view` on the organization's account.
  info @0 () -> (info :AccountInfo);
  statement @1 (from :Int64, to :Int64) -> (statement :Statement);
  watch @2 (listener :AccountListener) -> ();
  # Calls `listener.changed` after every committed change of this account until the holder's
  # attachment ends; bounded like every listener (the kit's Notifier).
}

interface Payer {
  # Paying from one account. A customer's PrivateAccount is one; an employee's facet is one only
  # when their role has `pay`, within its per-payment and per-day limits.
  pay @0 (transfer :Transfer) -> (outcome :TransferOutcome);
  payBatch @1 (transfers :List(Transfer)) -> (outcomes :List(TransferOutcome));
  # All or nothing, in one transaction: either every leg is `applied`, or none changed anything
  # and the failing leg says why while the others say `linkedEventFailed`. At most 64 legs.
  hold @2 (transfer :Transfer, timeoutMs :UInt32) -> (outcome :TransferOutcome, hold :Hold);
  # Two-phase: reserves `amount` (pending debit and credit) and hands back the Hold to post or
  # void it. A hold not posted within `timeoutMs` (1 s to 7 days) is voided by itself.
}

interface Hold {
  # An open two-phase transfer, held by whoever opened it.
  post @0 (id :Data, amount :UInt64) -> (outcome :TransferOutcome);
  # Moves up to the reserved amount (0 = all of it) from pending to posted; the rest is released.
  void @1 (id :Data) -> (outcome :TransferOutcome);
  info @2 () -> (receipt :Receipt, open :Bool, expiresAt :Int64);
}

interface PrivateAccount extends(AccountView, Payer) {
  # A customer's own account: read it and pay from it.
}

interface Depositor {
  # An employee's deposit-only facet of an organization's account: money can only come in, from
  # a PrivateAccount the caller holds (the caller's own authority over the debit side).
  deposit @0 (from :PrivateAccount, id :Data, amount :UInt64, memo :Text) -> (outcome :TransferOutcome);
}

interface PendingPayment {
  # A payment above the organization's approval threshold, waiting for a checker. Held by the
  # employee who made it.
  wait @0 () -> (outcome :TransferOutcome);
  # Answers when another employee approves (the payment's outcome) or rejects it (REJECTED error).
  info @1 () -> (payment :PaymentRequest);
}

struct PaymentRequest {
  id @0 :Data;
  account @1 :UInt64;
  to @2 :UInt64;
  amount @3 :UInt64;
  currency @4 :Text;
  memo @5 :Text;
  maker @6 :Text;                           # the employee who made it (from their perspective)
  at @7 :Int64;
}

interface Approver {
  # An employee's approve facet: decide payments other employees made above the threshold.
  pending @0 () -> (payments :List(PaymentRequest));
  approve @1 (id :Data) -> (outcome :TransferOutcome);
  # Executes the payment now (funds are checked now). Approving one's own payment is refused
  # (PARALLAX_ERR_PERMISSION_DENIED).
  reject @2 (id :Data, reason :Text) -> ();
}

struct Permissions {
  # What a role grants on an organization's accounts.
  view @0 :Bool;
  deposit @1 :Bool;
  pay @2 :Bool;
  perPaymentLimit @3 :UInt64;              # 0 = no limit
  perDayLimit @4 :UInt64;                  # 0 = no limit; a UTC day on the bank's clock
  approve @5 :Bool;
  manage @6 :Bool;                         # grant roles to employees (an org admin)
}

struct Role {
  name @0 :Text;
  permissions @1 :Permissions;
}

struct OrganizationInfo {
  id @0 :UInt64;
  name @1 :Text;
  approvalThreshold @2 :UInt64;            # payments above this wait for approval; 0 = none
  accounts @3 :List(AccountInfo);
  # In an Employment: balances and pending amounts are 0 unless the role has `view`.
}

struct Facets {
  # What an employee's role hands out for one organization account. A capability is null when
  # the role does not grant it: a facet with no `pay` has no `pay` method to call.
  account @0 :UInt64;
  view @1 :AccountView;
  deposit @2 :Depositor;
  pay @3 :Payer;
  approve @4 :Approver;
}

struct Employment {
  organization @0 :OrganizationInfo;
  role @1 :Role;
  facets @2 :List(Facets);
  manage @3 :OrgManager;                   # null unless the role has `manage`
}

interface OrgManager {
  # An organization admin's facet: roles and employees. Names are the employees acted *on*.
  defineRole @0 (role :Role) -> ();
  setRole @1 (username :Text, role :Text) -> ();
  # Adds the user as an employee with that role, or changes their role. Their facets of the old
  # role are revoked at once, on every connection; their other logins and private accounts stay.
  removeEmployee @2 (username :Text) -> ();
  setApprovalThreshold @3 (amount :UInt64) -> ();
  employees @4 () -> (employees :List(EmployeeInfo));
}

struct EmployeeInfo {
  username @0 :Text;
  role @1 :Text;
}

interface Customer extends(Broker.Perspective) {
  # ("bank", "customer"): the user's own accounts.
  accounts @0 () -> (accounts :List(AccountHandle));
}

struct AccountHandle {
  info @0 :AccountInfo;
  account @1 :PrivateAccount;
}

interface Employee extends(Broker.Perspective) {
  # ("bank", "employee"): what the user's roles grant in the organizations employing them.
  employments @0 () -> (employments :List(Employment));
}

interface Banker extends(Broker.Perspective) {
  # ("bank", "banker"): bank staff (admin keyrings). Names in arguments are the customers and
  # organizations acted *on*; the banker acting is the one whose login attached this.
  openAccount @0 (owner :Text, currency :Text, name :Text) -> (info :AccountInfo);
  openOrganization @1 (name :Text, currency :Text, admin :Text) -> (info :OrganizationInfo);
  # A new organization with one account in `currency` and `admin` as its first employee, holding
  # the built-in role "admin" (every permission).
  openOrganizationAccount @2 (organization :UInt64, currency :Text, name :Text) -> (info :AccountInfo);
  deposit @3 (account :UInt64, id :Data, amount :UInt64, memo :Text) -> (outcome :TransferOutcome);
  # Cash in: from the bank's cash account of the currency to `account`.
  withdraw @4 (account :UInt64, id :Data, amount :UInt64, memo :Text) -> (outcome :TransferOutcome);
  # Cash out: from `account` to the bank's cash account.
  totals @5 () -> (totals :List(CurrencyTotal));
  # The conservation check: per currency, the sum of every balance, posted and pending (always 0).
}

struct CurrencyTotal {
  currency @0 :Text;
  sum @1 :Int64;                           # posted balances: always 0
  accounts @2 :UInt32;
  pendingSum @3 :Int64;                    # pending (held) amounts: always 0
}
