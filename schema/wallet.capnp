@0xa83e5f1d27c94b60;
# Wallet sync (seed 000, LBRY's wallet-sync), as capabilities. An account is an Identity whose
# keyring holds ("wallet", "owner"); attaching it hands out the user's WalletPerspective. The
# server stores only what clients encrypted: it can never read a wallet or learn a password.

using Broker = import "broker.capnp";

struct WalletState {
  sequence @0 :UInt64;         # 1 for the first wallet, +1 for every accepted update
  encryptedWallet @1 :Data;    # AES-256-GCM under a key derived on the client; opaque here
  hmac @2 :Data;               # the client's HMAC over (sequence, encryptedWallet); opaque here
}

struct MaybeWallet {
  union {
    none @0 :Void;             # the server holds no wallet for this account yet
    state @1 :WalletState;
  }
}

struct UpdateOutcome {
  # A domain outcome, not an exception: a conflict carries the latest state, so the client can
  # merge without asking again.
  union {
    accepted @0 :WalletState;  # what was stored (the state sent)
    conflict @1 :WalletState;  # the sequence was not stored + 1: the server's latest state
  }
}

struct PasswordChangeOutcome {
  union {
    changed @0 :MaybeWallet;   # committed: what is stored now
    conflict @1 :MaybeWallet;  # the wallet's sequence moved on: the latest state; nothing changed
  }
}

interface WalletPerspective extends(Broker.Perspective) {
  # One user's wallet. Every method acts on the wallet of the login that attached it.

  get @0 () -> (wallet :MaybeWallet);
  # The holder. The current state, or `none`.

  update @1 (state :WalletState) -> (outcome :UpdateOutcome);
  # The holder. Stored only if `state.sequence` is the stored sequence + 1 (1 for the first);
  # otherwise `conflict` with the latest state. Fails with PARALLAX_ERR_REVOKED if the user's
  # credentials changed since this perspective was attached: no old-epoch update lands after a
  # password change. Wallet at most 1 MiB, hmac at most 64 bytes (PARALLAX_ERR_BAD_ARGUMENT).

  changePassword @2 (newVerifier :Broker.Verifier, wallet :MaybeWallet) -> (outcome :PasswordChangeOutcome);
  # The holder, from a password login. Replaces the verifier and stores the wallet re-encrypted
  # under the new key (sequence + 1) in one transaction. `wallet` must be `none` exactly when the
  # server holds no wallet (else PARALLAX_ERR_BAD_ARGUMENT). Bumps the epoch: every session of the
  # user, this one included, is revoked and told why. If the wallet moved on meanwhile, nothing
  # changes and the outcome is `conflict` with the latest state.
}

interface WalletWatcher {
  # Implemented by clients and passed as `client` to `attach("wallet", "owner", client)`.

  walletUpdated @0 (sequence :UInt64) -> ();
  # A wallet update was committed. Sent for every commit, in sequence order.

  notificationsDropped @1 (reason :Text, latestSequence :UInt64) -> ();
  # This watcher fell too far behind: notifications in between were dropped. Re-sync by
  # sequence (`get`). Notifications resume after this call.

  revoked @2 (reason :Text) -> ();
  # The attachment ended (password changed, logout, revoked): no more notifications.
}
