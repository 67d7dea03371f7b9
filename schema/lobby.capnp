@0xd2f7a4c19b3e5d08;
# The lobby: the smallest real service, served by `npm start` and used by the login demo. Each
# attachment of ("lobby", "member") gets its own LobbyMember perspective (one per device); the
# shared Room is a Viewable: it learns who is speaking from the Perspective the broker passes it,
# never from an argument.

using Broker = import "broker.capnp";

interface LobbyMember extends(Broker.Perspective) {
  # One user's view of the lobby. Acts as that user.

  hello @0 () -> (greeting :Text);
  # The holder. Greets the user by the name of the login that attached this perspective.

  room @1 () -> (room :Room);
  # The holder. The shared room (the same object for everyone).
}

interface Room {
  # A Viewable shared by every member: each call is made as the member whose perspective handed
  # the room to the caller.

  say @0 (text :Text) -> (line :Line);
  # Any member holding the room. Appends a line signed with the caller's name (from the
  # Perspective, not an argument) and tells every listener. At most 1000 characters.

  history @1 (count :UInt32) -> (lines :List(Line));
  # Any member holding the room. The last `count` lines (at most 100).

  listen @2 (listener :RoomListener) -> ();
  # Any member holding the room. The room calls `listener.said` for every new line until this
  # attachment (this device's member) ends; it owns `listener` until then. The same listener
  # registered again changes nothing; at most 4 per attachment (PARALLAX_ERR_QUOTA beyond). A
  # listener with 32 unanswered lines misses the lines that follow until it answers; one whose
  # call fails is dropped.
}

struct Line {
  speaker @0 :Text;
  text @1 :Text;
  at @2 :Int64;
}

interface RoomListener {
  # Implemented by clients.
  said @0 (line :Line) -> ();
}
