@0xc4b1e0a7d3f29a61;
# Login and authority: Root → AuthChallenger → Identity → Perspective.
#
# A connection starts holding the Root alone. Every other capability here is handed out by a
# call, and everything handed out after a login is bound to that login's grant: it acts as that
# user, and it fails with a `revoked` error once the user's credential epoch moves on (password
# change, suspension, key or API-key revocation, logout). No method takes a name to decide who is
# acting; names in arguments only say *which account to log in to* or *whom an admin acts on*.
#
# Passwords never cross the wire: login is SCRAM with argon2id (see README, "Login").

struct KdfParams {
  # The key-derivation function that turns a password into SaltedPassword.
  algorithm @0 :Text;      # "argon2id", the only one accepted
  memoryKiB @1 :UInt32;    # at least 19456 (19 MiB)
  iterations @2 :UInt32;   # at least 2
  parallelism @3 :UInt32;  # 1..16
}

struct Verifier {
  # What the server stores for a password, computed by the client: never the password itself.
  salt @0 :Data;           # 16..64 random bytes
  kdf @1 :KdfParams;
  storedKey @2 :Data;      # SHA-256(ClientKey), 32 bytes
  serverKey @3 :Data;      # HMAC(SaltedPassword, "Server Key"), 32 bytes
}

struct KeyringEntry {
  # One (service, perspective) pair an identity may attach.
  service @0 :Text;
  perspective @1 :Text;
}

enum AuthMethod {
  # How a login was authenticated.
  password @0;
  publicKey @1;
  apiKey @2;
  otp @3;
  resume @4;
  anonymous @5;
  signUp @6;   # the identity handed out by an accepted sign-up
}

struct Attachment {
  # A perspective this connection holds, and the grant it was attached through.
  service @0 :Text;
  perspective @1 :Text;
  grant @2 :Text;          # the login that attached it, e.g. "password", "api key 3 (ci runner)"
}

struct WhoAmI {
  name @0 :Text;
  authMethod @1 :AuthMethod;
  grant @2 :Text;          # describes the credential of this login
  keyring @3 :List(KeyringEntry);   # what this login may attach (an API key's subset, if any)
  epoch @4 :UInt64;        # the credential epoch this login belongs to
  attached @5 :List(Attachment);    # what this user's logins on this connection hold
  admin @6 :Bool;          # the keyring holds ("broker", "admin")
}

struct ApiKeyInfo {
  id @0 :UInt64;
  description @1 :Text;
  keyring @2 :List(KeyringEntry);
  createdAt @3 :Int64;     # ms since the epoch
  expiresAt @4 :Int64;     # ms since the epoch; 0 = never
  permissions @5 :List(UriPermission);  # empty: the key is not limited by URI
}

enum UriMatch {
  # How a URI pattern matches a URI (WAMP's match policies). URIs are dot-separated components.
  exact @0;                # the URI itself
  prefix @1;               # the URI and every URI below it ("a.b" matches "a.b" and "a.b.c", not "a.bc")
  wildcard @2;             # an empty component matches any one component ("a..c" matches "a.b.c")
}

struct UriPermission {
  # What may be done on the URIs a pattern matches (seed 003's `perms` letters c, r, p, s). Where
  # several patterns match one URI, the most specific decides: exact, then the longest prefix,
  # then the wildcard with the most fixed components (Crossbar's rule).
  uri @0 :Text;
  match @1 :UriMatch;
  call @2 :Bool;
  register @3 :Bool;       # also: register roster entries under the URI
  publish @4 :Bool;
  subscribe @5 :Bool;      # also: query and watch rosters under the URI
}

struct PublicKeyInfo {
  publicKey @0 :Data;      # Ed25519, 32 bytes
  device @1 :Text;
  addedAt @2 :Int64;
}

enum PendingKind {
  signUp @0;
  deviceKey @1;
}

struct PendingRequest {
  # A sign-up or a new device key waiting for approval.
  id @0 :UInt64;
  kind @1 :PendingKind;
  username @2 :Text;
  device @3 :Text;         # device keys: the device name the requester gave
  publicKey @4 :Data;      # device keys: the key
  createdAt @5 :Int64;
  remoteAddress @6 :Text;
}

struct ServerInfo {
  name @0 :Text;
  signUp @1 :SignUpMode;
  anonymous @2 :Bool;
  kdfFloor @3 :KdfParams;  # the weakest parameters a verifier may use
  kdfDefault @4 :KdfParams;# what clients should use for new verifiers
}

enum SignUpMode {
  closed @0;               # only an operator adds users
  open @1;                 # sign-up succeeds at once
  approval @2;             # sign-up answers pending until an operator approves
}

struct LoginOutcome {
  # The end of a challenge: an Identity, or a request waiting for approval (new device keys).
  serverSignature @0 :Data;    # password logins: HMAC(ServerKey, AuthMessage); verify it
  union {
    identity @1 :Identity;
    pending @2 :PendingApproval;
  }
}

struct SignUpOutcome {
  union {
    identity @0 :Identity;
    pending @1 :PendingApproval;
  }
}

interface Root {
  # The bootstrap object: anyone who connects holds it. It offers only ways to log in and to
  # sign up; it hands out AuthChallengers, Identities and PendingApprovals, never a Perspective.
  # Failed logins are rate-limited per username and per remote address; a refused attempt fails
  # with PARALLAX_ERR_RATE_LIMITED and says when to retry.

  info @0 () -> (info :ServerInfo);
  # Anyone. What this server accepts.

  login @1 (username :Text, clientNonce :Data) -> (salt :Data, kdf :KdfParams, serverNonce :Data, challenger :AuthChallenger);
  # Anyone. Starts a SCRAM password login. An unknown name gets a deterministic fake salt and a
  # challenger that always fails, so the answer never tells whether the name exists.
  # `clientNonce` is 16..64 random bytes.

  loginWithKey @2 (username :Text, publicKey :Data, device :Text) -> (serverNonce :Data, challenger :AuthChallenger);
  # Anyone. Starts an Ed25519 login: the challenger expects the signature of the key-login
  # AuthMessage. A key not yet registered to the user answers `pending` after a valid signature:
  # a request for this key alone, named `device` (at most 100 characters; empty = "new device"),
  # which the owner (from a password login) or an admin approves. At most 5 requests wait per
  # name: beyond that the login fails with PARALLAX_ERR_RATE_LIMITED. A request filed for a name
  # that does not exist yet can never be approved, not even by the name's later owner. A valid
  # signature by a registered key is never refused because of others' failed logins.

  loginWithApiKey @3 (key :Text) -> (identity :Identity);
  # Anyone holding an API key. The Identity's keyring is the key's subset; it cannot mint API
  # keys or OTPs.

  loginWithOtp @4 (username :Text, otp :Text) -> (identity :Identity);
  # Anyone holding a one-time password: it works once, within 10 minutes of being made.

  resume @5 (token :Text) -> (identity :Identity, token :Text, expiresAt :Int64);
  # Anyone holding a resume token of the user's current epoch. The Identity has the keyring of
  # the login that issued the token. The token is rotated: the one presented stops working and
  # `token` replaces it, with the same absolute expiry (`expiresAt`, 14 days after the login that
  # issued the first one). Presenting a token again after it was rotated revokes every token
  # descending from the same login (someone else holds a copy) and fails.

  loginAnonymous @6 () -> (identity :Identity);
  # Anyone, when the server allows anonymous logins: an Identity with the anonymous keyring.

  signUp @7 (username :Text, verifier :Verifier) -> (outcome :SignUpOutcome);
  # Anyone, when sign-up is open or by approval. Sends the verifier, never the password. Answers
  # the new Identity, or a PendingApproval when an operator must approve first.
}

interface AuthChallenger {
  # One login attempt. Single use: the first `respond` consumes it whatever the outcome, and it
  # expires 60 s after it was made.

  respond @0 (proof :Data) -> (outcome :LoginOutcome);
  # The holder of the challenger. Password: `ClientKey XOR HMAC(StoredKey, AuthMessage)`.
  # Public key: the Ed25519 signature of the key-login AuthMessage. Any failure burns the
  # challenger and counts against the rate limit.
}

interface PendingApproval {
  # A sign-up or device key waiting for an operator or the owner. Held by the requester only.

  wait @0 () -> (identity :Identity);
  # The holder. Resolves with the Identity once approved; fails with PARALLAX_ERR_REJECTED and
  # the reason when rejected or expired. No polling: the answer comes when the decision does.

  request @1 () -> (request :PendingRequest);
  # The holder. What is waiting.
}

interface Identity {
  # An authenticated login of one user. Everything it hands out is bound to this login's grant
  # and fails with PARALLAX_ERR_REVOKED once the user's epoch moves on.

  whoami @0 () -> (info :WhoAmI);
  # The holder. Name, how this login was made, its keyring and epoch, and what this connection
  # currently holds and through which grant.

  keyring @1 () -> (entries :List(KeyringEntry));
  # The holder. What this login may attach.

  attach @2 (service :Text, perspective :Text, client :Capability) -> (perspective :Perspective);
  # The holder, for a (service, perspective) pair on this login's keyring. Hands out that
  # Service's Perspective for this user; `client` (may be null) is the caller's callback
  # capability, owned by the Perspective until it is detached.

  changePassword @3 (newVerifier :Verifier) -> ();
  # Password logins only. Replaces the verifier and bumps the epoch in one transaction: every
  # login of this user, this one included, is revoked, and the user's resume tokens, OTPs and
  # API keys are deleted. Refused (PARALLAX_ERR_PERMISSION_DENIED) while a service holds data
  # keyed to the old password (a wallet: use WalletPerspective.changePassword); that check runs
  # inside the same transaction. Every credential change here fails with PARALLAX_ERR_REVOKED
  # if this login's epoch is no longer current when the store commits it.

  issueResumeToken @4 (device :Text) -> (token :Text, expiresAt :Int64);
  # Password, key and sign-up logins. A random token (stored hashed) that `Root.resume` accepts
  # for 14 days, until the epoch moves on or this login logs out. Resumed logins get their next
  # token from `resume` itself; API-key and OTP logins get none (a token would outlive the key's
  # expiry or the OTP's single use). At most 32 per identity: the one expiring soonest goes.

  createApiKey @5 (description :Text, keyring :List(KeyringEntry), expiresAt :Int64, permissions :List(UriPermission)) -> (key :ApiKeyInfo, secret :Text);
  # Password logins only. `keyring` lists what the key may attach: at least one pair, each on
  # this login's keyring. `expiresAt` 0 = never. `permissions` (at most 64; empty = no URI limit)
  # narrows what the key's logins may do on the router's URIs: an action needs both the user's
  # role and the key to allow it. The secret is shown once and stored hashed. Keys
  # die with a password change, a suspension and `logoutEverywhere`. At most 32 per identity.

  listApiKeys @6 () -> (keys :List(ApiKeyInfo));
  # Password logins only.

  revokeApiKey @7 (id :UInt64) -> ();
  # Password logins only. Deletes the key and bumps the epoch.

  createOtp @8 () -> (otp :Text, expiresAt :Int64);
  # Password logins only. A one-time password for `Root.loginWithOtp`, valid 10 minutes. At most
  # 8 unexpired per identity.

  addPublicKey @9 (publicKey :Data, device :Text) -> ();
  # Password logins only. Registers an Ed25519 key for `Root.loginWithKey`.

  listPublicKeys @10 () -> (keys :List(PublicKeyInfo));
  # The holder.

  revokePublicKey @11 (publicKey :Data) -> ();
  # Password logins only. Removes the key and bumps the epoch.

  pendingDevices @12 () -> (requests :List(PendingRequest));
  # Password logins only. New device keys waiting for this user's approval (requests filed while
  # the name did not belong to this user are not among them).

  decideDevice @13 (id :UInt64, approve :Bool, reason :Text) -> ();
  # Password logins only, for this user's own pending device keys.

  logout @14 () -> ();
  # The holder. Ends this login alone: its perspectives detach and the resume tokens it came from
  # or issued stop working. The user's other logins are untouched.

  logoutEverywhere @15 () -> ();
  # Password logins only. Bumps the epoch: every login of this user, on every connection, ends,
  # and every resume token, OTP and API key of the user is deleted.
}

interface Perspective {
  # What a service hands a user: its methods act as that user. Services extend this interface.

  detach @0 () -> ();
  # The holder. Ends this attachment now (the service's `detached` runs); the capability fails
  # afterwards.
}

interface Admin extends(Perspective) {
  # The ("broker", "admin") perspective, on admin keyrings only. Names in its arguments are the
  # accounts it acts *on*; the admin acting is the one whose login attached it.

  listPending @0 () -> (requests :List(PendingRequest));
  # Every request waiting for approval.

  decide @1 (id :UInt64, approve :Bool, reason :Text) -> ();
  # Approves or rejects a pending sign-up or device key; the waiting client learns at once.

  listUsers @2 () -> (users :List(UserInfo));

  suspend @3 (username :Text, suspended :Bool) -> ();
  # Suspending bumps the user's epoch: every login of theirs is revoked.

  setKeyring @4 (username :Text, keyring :List(KeyringEntry)) -> ();
  # Replaces the user's keyring and bumps their epoch.
}

struct UserInfo {
  name @0 :Text;
  keyring @1 :List(KeyringEntry);
  epoch @2 :UInt64;
  suspended @3 :Bool;
  createdAt @4 :Int64;
}
