@0xce60bac4d107318d;
# Chat (seed 004's chat, with its spoofing bug designed out). Each attachment of ("chat",
# "member") gets a ChatMember perspective (one per device). Joining a room hands the user a
# RoomMember facet for that room alone: the server stamps every message with the author (from the
# perspective the facet was handed to), its clock and the room's next sequence number; nothing a
# client sends names the author. Direct messages go through a send-only Mailbox, never a
# reference to the other user.
#
# Room names are 1..64 characters of ASCII letters, digits, '-', '_' and '.', unique ignoring
# case. Messages are 1..4000 characters (code points); line breaks and tabs are allowed, other
# control characters and bidirectional overrides are not. Topics are at most 200 such characters
# with no line breaks. Errors: malformed input is PARALLAX_ERR_BAD_ARGUMENT, unknown rooms and
# users PARALLAX_ERR_NOT_FOUND (a private room one is not in is unknown), floods
# PARALLAX_ERR_QUOTA, acting beyond one's role in a room (a muted member posting, a member
# moderating) PARALLAX_ERR_PERMISSION_DENIED, a facet of a removed member or an ended login
# PARALLAX_ERR_REVOKED.
#
# Facets are capabilities: a RoomMember, Moderator, Mailbox or Inbox acts for the user it was
# handed to, whoever holds it. A user who passes one on lends their own authority (messages still
# carry their name), and it ends with their membership or their login, in every copy.

using Broker = import "broker.capnp";

enum RoomKind {
  # In every kind the owner and the moderators may mute and remove members; only in a moderated
  # room is a removal a ban (elsewhere the removed may join again, as the kind allows).
  public @0;               # anyone with the chat perspective may join
  inviteOnly @1;           # joined only with an Invitation
  moderated @2;            # public, but a member a moderator removes cannot rejoin
}

enum MessageKind {
  text @0;
  joined @1;               # the author joined
  left @2;                 # the author left
  removed @3;              # `text` names the member a moderator removed
  muted @4;                # `text` names the member muted, and until when
  unmuted @5;              # `text` names the member a moderator unmuted
}

struct Message {
  room @0 :Text;
  seq @1 :UInt64;          # 1, 2, 3, ... per room, with no gaps
  author @2 :Text;         # from the author's perspective; for direct messages, the sender
  text @3 :Text;
  at @4 :Int64;            # ms since the epoch, the server's clock
  kind @5 :MessageKind;
}

struct RoomInfo {
  name @0 :Text;
  kind @1 :RoomKind;
  topic @2 :Text;
  owner @3 :Text;
  members @4 :UInt32;
  lastSeq @5 :UInt64;
  lastRead @6 :UInt64;     # the caller's read marker in this room (0 if not a member)
  member @7 :Bool;         # the caller is a member
  moderator @8 :Bool;      # the caller moderates the room
}

enum Status {
  online @0;
  away @1;
  busy @2;
  offline @3;              # no chat attachment (or the status expired)
}

struct Presence {
  user @0 :Text;
  status @1 :Status;
  text @2 :Text;
  until @3 :Int64;         # when a status set with a lifetime lapses back to online; 0 = never
}

struct HistoryQuery {
  union {
    latest @0 :Void;       # the newest messages
    before @1 :UInt64;     # messages with a smaller sequence
    after @2 :UInt64;      # messages with a greater sequence
  }
  limit @3 :UInt32;        # at most 100; 0 means 50
}

struct JoinOptions {
  listener @0 :RoomListener;   # may be null: no live messages on this device
  history @2 :UInt8;
  # History on join: the newest this many messages (at most 100) come back in the join's
  # `history`, oldest first, from the same snapshot the listener starts after (0: none).
  resumeAfter @1 :UInt64;
  # 0: live messages from now on. Otherwise every message with a greater sequence is delivered
  # first, then the live ones: none lost, none twice. Beyond the retained window (the last 1000
  # messages, at most 1 MiB of them) the listener hears `unrecoverable` first and fills in with
  # `history`. A sequence
  # beyond the room's last message is PARALLAX_ERR_BAD_ARGUMENT.
}

interface RoomListener {
  # Implemented by clients, per device. Messages arrive in sequence order, at most 32 unanswered.
  message @0 (message :Message) -> ();
  typing @1 (user :Text, until :Int64) -> ();
  presence @2 (presence :Presence) -> ();
  unrecoverable @3 (after :UInt64, resumedFrom :UInt64) -> ();
  # Messages in (after, resumedFrom) are no longer in the live window: read them with `history`.
  closed @4 (reason :Text) -> ();
  # This facet ended (removed by a moderator, left, revoked); nothing more will arrive.
}

interface ChatMember extends(Broker.Perspective) {
  # One user's view of chat on one device. Acts as that user.

  rooms @0 () -> (rooms :List(RoomInfo));
  # The holder. Public and moderated rooms, and the invite-only rooms the user is in, by name
  # (at most 500).

  createRoom @1 (name :Text, kind :RoomKind, topic :Text, options :JoinOptions) -> (member :RoomMember, info :RoomInfo, history :List(Message));
  # The holder. The creator owns the room, moderates it and is its first member. At most 32
  # rooms owned per user. PARALLAX_ERR_ALREADY_EXISTS if the name is taken.

  join @2 (room :Text, options :JoinOptions) -> (member :RoomMember, info :RoomInfo, history :List(Message));
  # The holder, for public and moderated rooms (invite-only: PARALLAX_ERR_NOT_FOUND unless the
  # user is a member already or owns it). Joining again on another device hands out another
  # facet for the same membership. A member removed from a moderated room cannot rejoin it
  # (PARALLAX_ERR_PERMISSION_DENIED) unless a moderator invites them by name. A room holds at most
  # 2000 members (PARALLAX_ERR_QUOTA).

  invitations @3 () -> (invitations :List(Invitation));
  # The holder. Invitations addressed to this user that are still open.

  mailbox @4 (user :Text) -> (mailbox :Mailbox);
  # The holder. A send-only facet to `user`'s inbox; each message is stamped with this user as
  # the sender. PARALLAX_ERR_NOT_FOUND for unknown users.

  inbox @5 (options :InboxOptions) -> (inbox :Inbox);
  # The holder. This user's direct messages (a log like a room's, sequenced per user); the
  # listener, if any, hears them on this device until it detaches.

  setStatus @6 (status :Status, text :Text, ttlMs :UInt32) -> ();
  # The holder. Shown to the rooms the user is in; `ttlMs` 0 = until changed or the last device
  # leaves, else it lapses back to online after that long (at most one day). `status` is online,
  # away or busy (offline is what others see once the user has no chat attachment); `text` is at
  # most 100 characters. At most 3 changes at once, then one a second (PARALLAX_ERR_QUOTA).

  presence @7 (users :List(Text)) -> (presence :List(Presence));
  # The holder. The status of up to 100 users, in the order asked (unknown names answer offline).

  acceptInvitation @8 (invitation :Invitation, options :JoinOptions) -> (member :RoomMember, info :RoomInfo, history :List(Message));
  # The holder: accepts, as this user and on this device, an invitation of this server however it
  # reached them (Invitation.accept needs the call to come through the user's chat perspective;
  # this takes one that arrived through another service). PARALLAX_ERR_BAD_ARGUMENT for a
  # capability that is no invitation of this server.
}

interface RoomMember {
  # One user's membership of one room, as handed to one device. Calls act as that user; they fail
  # with PARALLAX_ERR_REVOKED once the user left or was removed, on every connection.

  post @0 (text :Text) -> (message :Message);
  # The member, unless muted (PARALLAX_ERR_PERMISSION_DENIED). At most 10 messages a second per
  # member and room, and 20 posts, joins and leaves a second per user over all rooms
  # (PARALLAX_ERR_QUOTA). Answered once the message is stored durably.

  history @1 (query :HistoryQuery) -> (messages :List(Message));
  # The member. In sequence order.

  typing @2 () -> ();
  # The member, unless muted. Tells the others for 5 s (again to extend it; the others are told
  # again at most once a second).

  markRead @3 (seq :UInt64) -> ();
  # The member. Moves the user's read marker forward (never back), on every device; a sequence
  # beyond the room's last message is PARALLAX_ERR_BAD_ARGUMENT.

  leave @4 () -> ();
  # The member. Ends the membership on every device.

  members @5 () -> (members :List(Presence));
  # The member. Every member, by name.

  invite @6 (user :Text) -> (invitation :Invitation);
  # Members of invite-only rooms, and moderators. `user` names the invitee; "" makes a bearer
  # invitation anyone holding it may accept once. The invitee sees addressed invitations with
  # ChatMember.invitations and is told on their inbox. At most 50 open invitations per inviter
  # and room (PARALLAX_ERR_QUOTA); an invitation dies with its inviter's membership.

  moderation @7 () -> (moderator :Moderator);
  # Moderators only (PARALLAX_ERR_PERMISSION_DENIED otherwise).

  info @8 () -> (info :RoomInfo);
}

interface Moderator {
  # A moderator's powers over one room; fails with PARALLAX_ERR_REVOKED once they stop moderating.

  mute @0 (user :Text, untilMs :Int64) -> ();
  # The member may read but not post until then (ms since the epoch, in the future; 0: until
  # unmuted). The owner cannot be muted, and only the owner mutes moderators.

  unmute @1 (user :Text) -> ();

  remove @2 (user :Text, reason :Text) -> ();
  # Ends the member's membership: every facet of theirs fails from now on, on every connection,
  # and their listeners hear `closed` with `reason` (at most 200 characters). In a moderated
  # room they cannot rejoin. The owner cannot be removed, and only the owner removes moderators.

  setModerator @3 (user :Text, moderator :Bool) -> ();
  # The owner only.
}

interface Invitation {
  # An invitation to one room: held by whoever the inviter handed it to.
  info @0 () -> (room :Text, inviter :Text, invitee :Text);
  accept @1 (options :JoinOptions) -> (member :RoomMember, info :RoomInfo, history :List(Message));
  # The invitee named in it (or anyone, for a bearer invitation), once, through their chat
  # perspective. Someone else: PARALLAX_ERR_PERMISSION_DENIED; used, or its inviter gone from the
  # room: PARALLAX_ERR_NOT_FOUND.
}

interface Mailbox {
  # Send-only: holds no way to read, to act as the recipient or to reach anything else of theirs.
  send @0 (text :Text) -> (seq :UInt64);
  # Appends to the recipient's inbox, stamped with the sender from the perspective that made
  # the mailbox; answered once stored durably, with the message's sequence in that inbox. At
  # most 10 a second per sender (PARALLAX_ERR_QUOTA).
}

struct InboxOptions {
  listener @0 :InboxListener;
  resumeAfter @1 :UInt64;  # as in JoinOptions
}

interface InboxListener {
  message @0 (message :Message) -> ();    # `room` is "", `author` the sender
  invited @1 (invitation :Invitation) -> ();
  unrecoverable @2 (after :UInt64, resumedFrom :UInt64) -> ();
}

interface Inbox {
  # One user's direct messages, as handed to one device.
  history @0 (query :HistoryQuery) -> (messages :List(Message));
}
