@0xf07b38c147dd8b51;
# The router: seed 003's WAMP-style extras (call, register, publish, subscribe, rosters, user
# metadata, whoami) rebuilt as capabilities. Each attachment of ("router", "session") is one
# session: one device's login. Who calls, publishes or registers is the session the call came
# through, supplied by the broker; no method takes a name, role or session id to decide who acts.
#
# URIs are dot-separated components ("com.example.hello"): 1..255 characters, no whitespace, no
# '#', no control, invisible or bidirectional-override characters; components are non-empty
# except in wildcard patterns. Every action is checked against the
# user's role (the router's permission rules, most specific pattern wins) and, for an API-key
# login, against the key's own URI permissions too (PARALLAX_ERR_PERMISSION_DENIED naming the URI
# and the action).
#
# Errors: malformed input (a bad URI, JSON that does not parse, a payload over its limit) is
# PARALLAX_ERR_BAD_ARGUMENT; floods and counts over a quota are PARALLAX_ERR_QUOTA; everything a
# session holds fails with PARALLAX_ERR_REVOKED once its login is revoked.

using Broker = import "broker.capnp";

struct Payload {
  # Application data as JSON text (RFC 8259), like WAMP's args and kwargs: `args` a JSON array
  # ("" means []), `kwargs` a JSON object ("" means {}). Together at most 64 KiB of UTF-8, nested
  # at most 32 deep; the router checks both and passes the text on unchanged.
  args @0 :Text;
  kwargs @1 :Text;
}

struct Caller {
  # Who made a call, a publication or a roster entry: taken by the broker from the session it
  # came through, never from an argument (WAMP's caller_authid, caller_authrole, caller).
  authid @0 :Text;         # the user name
  role @1 :Text;
  session @2 :UInt64;      # this router's id of the session; meaningless elsewhere
}

struct WhoAmI {
  authid @0 :Text;
  role @1 :Text;
  session @2 :UInt64;
  authMethod @3 :Broker.AuthMethod;
  apiKeyPermissions @4 :List(Broker.UriPermission);  # an API-key login's URI limits; empty otherwise
}

enum InvocationPolicy {
  # How a call picks among the registrations sharing one URI (all must ask for the same policy).
  single @0;               # one registration only; a second one is refused
  roundrobin @1;
  random @2;
  first @3;                # the oldest registration
  last @4;                 # the newest registration
}

struct RegisterOptions {
  match @0 :Broker.UriMatch;
  invoke @1 :InvocationPolicy;
  forceReregister @2 :Bool;
  # Replace the registrations on this URI and match that belong to the same user and role (a
  # zombie session of the same script); never someone else's.
}

struct Invocation {
  # What the callee receives with each call.
  procedure @0 :Text;      # the full URI called (useful with prefix and wildcard registrations)
  caller @1 :Caller;       # from the broker: unforgeable
  payload @2 :Payload;
}

interface Callee {
  # Implemented by the registering client.
  invoke @0 (invocation :Invocation) -> (result :Payload);
  # Called once per call routed to this registration. What it throws reaches the caller as the
  # call's error (its message, with PARALLAX_ERR_FAILED).
}

interface Registration {
  # Held by the registering session. The registration ends when it is unregistered, when this
  # capability is released, when it is replaced by forceReregister, and when its session ends.
  unregister @0 () -> ();
  info @1 () -> (id :UInt64, procedure :Text, match :Broker.UriMatch, invoke :InvocationPolicy);
}

struct PublishOptions {
  excludeMe @0 :Bool = true;       # the publishing session does not receive it
  exclude @1 :List(UInt64);        # sessions that do not receive it
  excludeAuthid @2 :List(Text);
  excludeAuthrole @3 :List(Text);
  eligible @4 :List(UInt64);       # when any eligible list is set, only matching sessions receive it
  eligibleAuthid @5 :List(Text);
  eligibleAuthrole @6 :List(Text);
  retain @7 :Bool;                 # keep it as the topic's retained event for later subscribers
}

struct Event {
  topic @0 :Text;          # the full URI published to
  seq @1 :UInt64;          # the router's publication sequence: increasing over all topics
  publisher @2 :Caller;    # from the broker: unforgeable
  payload @3 :Payload;
  at @4 :Int64;            # ms since the epoch, the router's clock
  retained @5 :Bool;       # delivered as a topic's retained event when subscribing
}

struct SubscribeOptions {
  match @0 :Broker.UriMatch;
  getRetained @1 :Bool;    # first deliver the retained event of each matching topic
  resumeAfter @2 :UInt64;
  # 0: from now on. Otherwise every matching event with a greater sequence is delivered first,
  # from the router's retained window, then the live ones: none lost, none twice. Beyond the
  # window the handler hears `unrecoverable` first.
}

interface EventHandler {
  # Implemented by subscribers. Events arrive in sequence order, at most 32 unanswered at once;
  # a handler that falls further behind is fed from the retained window when it catches up.
  event @0 (event :Event) -> ();
  unrecoverable @1 (after :UInt64, resumedFrom :UInt64) -> ();
  # Events with sequences in (after, resumedFrom) may have matched and are no longer retained.
}

interface Subscription {
  # Held by the subscribing session. Unsubscribed when it is released, too.
  unsubscribe @0 () -> ();
  info @1 () -> (id :UInt64, topic :Text, match :Broker.UriMatch, lastSeq :UInt64);
  # `lastSeq`: the sequence of the last event this subscription delivered (resume from it).
}

struct RosterEntry {
  name @0 :Text;           # the roster's URI
  owner @1 :Caller;        # the registering session, from the broker
  data @2 :Text;           # JSON text, at most 16 KiB
  updatedAt @3 :Int64;
}

struct RosterChange {
  union {
    joined @0 :RosterEntry;
    updated @1 :RosterEntry;
    left @2 :RosterEntry;
  }
}

interface RosterWatcher {
  # Implemented by clients: told of every change to one roster visible to the watching session,
  # at most 32 unanswered at once.
  changed @0 (change :RosterChange) -> ();
  missed @1 (count :UInt32) -> ();
  # The watcher fell 32 changes behind and `count` were not delivered: query the roster again.
}

struct MetadataEntry {
  key @0 :Text;            # 1..255 characters
  value @1 :Text;          # JSON text
  version @2 :UInt64;      # 1 for a new key, +1 for every write; 0: no such key
  updatedAt @3 :Int64;
}

struct Precondition {
  union {
    none @0 :Void;         # write whatever is there
    version @1 :UInt64;    # write only if the key's version is this one (0: only if absent)
  }
}

struct MetadataOutcome {
  union {
    ok @0 :MetadataEntry;            # written (deleted: the entry as it was)
    conflict @1 :MetadataEntry;      # the precondition failed: the current entry (version 0 = absent)
    tooLarge @2 :UInt32;             # the value is over this many bytes
    tooMany @3 :UInt32;              # the user has this many keys already
  }
}

interface MetadataWatcher {
  # Implemented by clients: told of changes to the user's metadata made by the user's other
  # sessions, at most 32 unanswered at once.
  changed @0 (entry :MetadataEntry, deleted :Bool) -> ();
  missed @1 (count :UInt32) -> ();
  # `count` changes were not delivered: list the metadata again.
}

interface Watch {
  # A roster or metadata watch. Ends when canceled, released, or its session ends.
  cancel @0 () -> ();
}

interface RouterSession extends(Broker.Perspective) {
  # One session of one user (seed 003's `wamp` object). Every method acts as the login that
  # attached it.

  whoami @0 () -> (info :WhoAmI);
  # The holder. The user name and role, from the login (seed 003: {'authid', 'role'}).

  publish @1 (topic :Text, payload :Payload, options :PublishOptions) -> (seq :UInt64);
  # Needs `publish` on `topic`; at most 1000 a second per user. Delivered to every eligible
  # subscription whose pattern matches, with the publisher disclosed by the broker. Answers the
  # event's sequence.

  subscribe @2 (topic :Text, handler :EventHandler, options :SubscribeOptions) -> (subscription :Subscription, lastSeq :UInt64);
  # Needs `subscribe` on `topic` (for prefix and wildcard patterns: on the pattern). `lastSeq` is
  # the router's latest sequence when the subscription started. At most 64 per session.

  register @3 (procedure :Text, callee :Callee, options :RegisterOptions) -> (registration :Registration);
  # Needs `register` on `procedure`. At most 64 per session. A URI and match with a registration
  # already are refused (PARALLAX_ERR_ALREADY_EXISTS) unless both ask for the same shared policy,
  # or forceReregister replaces the same user's.

  call @4 (procedure :Text, payload :Payload, timeoutMs :UInt32) -> (result :Payload);
  # Needs `call` on `procedure`. Routed to the most specific registration (exact, then the longest
  # prefix, then the most specific wildcard); PARALLAX_ERR_NOT_FOUND when none matches. The callee
  # learns the caller from the broker. `timeoutMs` 0: the router's default (60 s). At most 128
  # calls are in flight to one user's registrations; beyond, PARALLAX_ERR_QUOTA (retry later).

  rosterRegister @5 (name :Text, data :Text, visibleTo :List(Text)) -> (entry :RosterEntry);
  # Needs `register` on `name`. One entry per session and roster: registering again updates it.
  # `visibleTo` lists the roles that may see it (empty: every role that may query the roster).
  # The entry lives as long as the session.

  rosterUnregister @6 (name :Text) -> (removed :Bool);
  # This session's own entry only.

  rosterQuery @7 (name :Text) -> (entries :List(RosterEntry));
  # Needs `subscribe` on `name`. The entries this session's role may see.

  rosterWatch @8 (name :Text, watcher :RosterWatcher) -> (entries :List(RosterEntry), watch :Watch);
  # As rosterQuery, then every change (joined, updated, left) to entries the role may see.

  metadataSet @9 (key :Text, value :Text, precondition :Precondition) -> (outcome :MetadataOutcome);
  # The user's own metadata, kept across logins. Values at most 16 KiB, at most 256 keys. Refused
  # (PARALLAX_ERR_PERMISSION_DENIED) to API-key logins limited by URI, as are the other metadata
  # methods: such a key is for the URIs it names.

  metadataGet @10 (key :Text) -> (entry :MetadataEntry);
  # Version 0 when there is no such key.

  metadataList @11 () -> (entries :List(MetadataEntry));

  metadataDelete @12 (key :Text, precondition :Precondition) -> (outcome :MetadataOutcome);

  metadataWatch @13 (watcher :MetadataWatcher) -> (watch :Watch);
  # Every change to this user's metadata made through another session of the user.
}
