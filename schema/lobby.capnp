@0xd2f7a4c19b3e5d08;
# The lobby: the smallest real service, served by `npm start` and used by the login demo. A user
# attaches ("lobby", "member") and gets a LobbyMember perspective; the shared Room is a Viewable:
# it learns who is speaking from the Perspective the broker passes it, never from an argument.

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
  # Any member holding the room. The room calls `listener.said` for every new line until the
  # member detaches; it owns `listener` until then.
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
