@0xef166a1eb8366c1a;
# The Go server (seed 004, its unfinished last section, finished). Each attachment of
# ("go", "player") gets a Player perspective; every game is one Viewable shared by its two
# players, and the colour a call plays is the caller's seat in that game, decided from the
# Perspective the broker passes it, never from an argument. Spectators hold a separate read-only
# interface with no `move` at all.
#
# Points are (x, y) with 0 ≤ x, y < size, x the column from the left, y the row from the top (as
# SGF counts them). Domain outcomes (an illegal move, a move out of turn, after the end) are the
# `MoveOutcome` union; errors are for malformed input (PARALLAX_ERR_BAD_ARGUMENT: a point off the
# board, a board size outside 2..25, a chat line over its limit), for authority
# (PARALLAX_ERR_REVOKED, PARALLAX_ERR_PERMISSION_DENIED) and for floods (PARALLAX_ERR_QUOTA).

using Broker = import "broker.capnp";

enum Color {
  black @0;
  white @1;
}

enum KoRule {
  simple @0;        # only the immediate recapture of a single stone is refused
  positional @1;    # no whole-board position may repeat, over the whole game
  situational @2;   # no position may repeat with the same player to move, over the whole game
}

enum Scoring {
  area @0;          # Chinese / Tromp-Taylor: stones plus empty points reaching one colour only
  territory @1;     # Japanese: territory plus prisoners (captures and dead stones)
}

struct Rules {
  size @0 :UInt8 = 19;          # 2 to 25
  komi @1 :Float64 = 6.5;       # a multiple of 0.5, |komi| ≤ 150
  koRule @2 :KoRule = positional;
  scoring @3 :Scoring = area;
  allowSuicide @4 :Bool;        # multi-stone suicide allowed (New Zealand, Tromp-Taylor)
  handicap @5 :UInt8;           # 0, or 2 to 9 stones for black (white moves first then)
  freeHandicap @6 :Bool;        # black places the handicap stones itself instead of the star points
  handicapBonus @7 :HandicapBonus;
}

enum HandicapBonus {
  # Points white receives for black's handicap stones under area scoring.
  none @0;
  n @1;             # one per stone (Chinese)
  nMinusOne @2;     # one per stone after the first (AGA)
}

enum TimeSystem {
  none @0;
  absolute @1;      # mainSeconds for the whole game
  byoyomi @2;       # mainSeconds, then `periods` periods of periodSeconds; one is lost only when overrun
  canadian @3;      # mainSeconds, then `stonesPerPeriod` moves within each periodSeconds
  fischer @4;       # mainSeconds, plus incrementSeconds after each move, never above maxSeconds (0: no cap)
  simple @5;        # perMoveSeconds for every move
}

struct TimeControl {
  # Whole seconds, each at most 30 days; byo-yomi periods and Canadian stones at most 100.
  system @0 :TimeSystem;
  mainSeconds @1 :UInt32;
  periodSeconds @2 :UInt32;
  periods @3 :UInt32;
  stonesPerPeriod @4 :UInt32;
  incrementSeconds @5 :UInt32;
  maxSeconds @6 :UInt32;
  perMoveSeconds @7 :UInt32;
}

enum ColorChoice {
  nigiri @0;        # chosen at random when the challenge is accepted
  black @1;         # the challenger plays black
  white @2;
}

struct ChallengeTerms {
  rules @0 :Rules;
  time @1 :TimeControl;
  ranked @2 :Bool;
  color @3 :ColorChoice;
  opponent @4 :Text;            # "" for an open challenge; else only this user may accept it
}

struct ChallengeInfo {
  id @0 :UInt64;
  challenger @1 :Text;          # the challenger's user name, from their Perspective
  terms @2 :ChallengeTerms;
  createdAt @3 :Int64;
}

enum Phase {
  playing @0;
  scoring @1;       # both passed: the players mark dead stones and accept the score
  finished @2;
}

struct ClockState {
  # One player's clock, as the server's authoritative clock had it at `at`.
  mainMs @0 :Int64;             # main time left (Fischer: the whole clock)
  periodMs @1 :Int64;           # the current period's time left (byo-yomi, Canadian, simple)
  periodsLeft @2 :UInt32;       # byo-yomi periods left, the current one included
  stonesLeft @3 :UInt32;        # Canadian: moves still due in this period
  inOvertime @4 :Bool;          # main time used up
  running @5 :Bool;             # this player's clock is the one running
}

struct Clocks {
  black @0 :ClockState;
  white @1 :ClockState;
  at @2 :Int64;                 # ms since the epoch, the server's clock
  paused @3 :Bool;              # stopped while the players mark dead stones
}

struct GameInfo {
  id @0 :UInt64;
  black @1 :Text;
  white @2 :Text;
  rules @3 :Rules;
  time @4 :TimeControl;
  ranked @5 :Bool;
  phase @6 :Phase;
  toMove @7 :Color;
  moveCount @8 :UInt32;
  result @9 :Text;              # "" while unfinished; else as SGF's RE: "B+R", "W+T", "B+3.5", "0"
  createdAt @10 :Int64;
  blackCaptures @11 :UInt32;    # stones black has captured
  whiteCaptures @12 :UInt32;
}

struct Point {
  x @0 :UInt8;
  y @1 :UInt8;
}

struct MoveRecord {
  number @0 :UInt32;            # 1 for the first move of the game
  color @1 :Color;
  union {
    play @2 :Point;
    pass @3 :Void;
  }
  captured @4 :List(Point);     # the stones this move removed
  at @5 :Int64;
}

struct BoardState {
  size @0 :UInt8;
  points @1 :Data;              # size × size bytes, row by row from the top: 0 empty, 1 black, 2 white
  toMove @2 :Color;
  moveCount @3 :UInt32;
  koPoint @4 :Point;            # meaningful when hasKo: the point the simple-ko rule forbids now
  hasKo @5 :Bool;
  dead @6 :List(Point);         # in the scoring phase: the stones marked dead
}

enum Illegal {
  occupied @0;
  suicide @1;
  ko @2;              # the immediate recapture
  superko @3;         # the position would repeat one of the game's earlier positions
  notYourTurn @4;
  gameOver @5;        # the game has ended, or play has stopped for scoring
  notScoring @6;      # dead stones are marked and scores accepted only in the scoring phase
  noUndoPending @7;
  undoPending @8;     # an undo request is already waiting for an answer
  nothingToUndo @9;
  tooEarly @10;       # claimWin before the opponent's grace period ran out
  notDisconnected @11;
  handicapPending @12; # black places the free handicap stones first
  notHandicapPhase @13;
  moveLimit @14;       # the game holds as many moves as a game may
}

struct MoveOutcome {
  union {
    played @0 :MoveRecord;
    illegal @1 :Illegal;
    ended @2 :Text;     # this call ended the game (resign, the score accepted by both): the result
  }
}

struct Score {
  black @0 :Float64;            # points, komi included for white
  white @1 :Float64;
  result @2 :Text;              # "B+3.5", "W+0.5", "0"
  blackTerritory @3 :List(Point);
  whiteTerritory @4 :List(Point);
}

struct ChatLine {
  speaker @0 :Text;             # from the speaker's Perspective
  text @1 :Text;
  at @2 :Int64;
  spectator @3 :Bool;           # said by a spectator: players never receive these
}

struct GameEvent {
  union {
    moved @0 :MoveRecord;
    undoRequested @1 :Color;      # by this colour
    undoAnswered @2 :Bool;        # accepted or not
    undone @3 :UInt32;            # the move count after the undo
    scoring @4 :Score;            # play stopped (two passes) or the dead stones changed
    scoreAccepted @5 :Color;
    ended @6 :Text;               # the result
    chat @7 :ChatLine;
    disconnected @8 :Color;       # this player dropped; their grace period runs
    reconnected @9 :Color;
    resumed @11 :Void;            # the players went back to play from the scoring phase
    handicapPlaced @12 :List(Point);
  }
  clocks @10 :Clocks;
}

interface GameListener {
  # Implemented by clients (players and spectators).
  event @0 (event :GameEvent) -> ();
}

interface GameView {
  # What players and spectators alike may do: read the game and follow it.

  info @0 () -> (info :GameInfo);
  board @1 () -> (board :BoardState);
  moves @2 (from :UInt32, count :UInt32) -> (moves :List(MoveRecord));
  # Moves numbered `from` + 1 onwards, at most `count` (at most 1000).
  clocks @3 () -> (clocks :Clocks);
  sgf @4 () -> (sgf :Text);
  # The game as SGF FF[4]: rules, komi, handicap, players, time control, moves and result.
  chat @5 (count :UInt32) -> (lines :List(ChatLine));
  # The last `count` chat lines (at most 100) this holder may read: spectators' lines are not
  # shown to players.
  listen @6 (listener :GameListener) -> ();
  # Sends every later event to `listener` until this attachment ends (it owns `listener` until
  # then); at most 4 per attachment and game (PARALLAX_ERR_QUOTA). A listener with 32 unanswered
  # events misses the next ones until it answers; one whose call fails is dropped.
  say @7 (text :Text) -> ();
  # A chat line (1 to 500 characters) signed with the caller's name. Players' lines reach
  # everyone; spectators' lines reach spectators only.
}

interface Game extends(GameView) {
  # A player's hold on one of their games. The colour played is the caller's seat in this game.

  move @0 (point :Point) -> (outcome :MoveOutcome);
  pass @1 () -> (outcome :MoveOutcome);
  resign @2 () -> (outcome :MoveOutcome);
  requestUndo @3 () -> (outcome :MoveOutcome);
  # Asks the opponent to take back the caller's last move (and the opponent's reply after it, if
  # any). One request waits at a time (`undoPending`); a refused request may be asked again
  # after the next move only.
  answerUndo @4 (accept :Bool) -> (outcome :MoveOutcome);
  markDead @5 (point :Point, dead :Bool) -> (outcome :MoveOutcome);
  # Scoring phase: marks the group at `point` dead (or alive again). Any change withdraws both
  # players' acceptance.
  acceptScore @6 () -> (outcome :MoveOutcome);
  # When both have accepted the same marking, the game ends with that score.
  resume @7 () -> (outcome :MoveOutcome);
  # Scoring phase: go back to play (the opponent of the last passer moves).
  claimWin @8 () -> (outcome :MoveOutcome);
  # The opponent has been disconnected for longer than the grace period: win by timeout.
  score @9 () -> (score :Score);
  # The score of the current marking (the scoring phase) or of the final position.
  placeHandicap @10 (points :List(Point)) -> (outcome :MoveOutcome);
  # Black, in a free-handicap game before the first move: exactly `handicap` distinct points.
}

interface Spectator extends(GameView) {
  # A read-only hold on a game: no method of Game. A call carrying Game's interface id answers
  # unimplemented.
}

interface Challenge {
  # The challenger's hold on an open challenge.
  cancel @0 () -> ();
  accepted @1 () -> (game :Game);
  # Answers when someone accepts (FAILED if cancelled or expired first).
}

struct Rating {
  rating @0 :Float64;           # Glicko-2 on the Glicko scale (1500 to start)
  deviation @1 :Float64;
  volatility @2 :Float64;
  games @3 :UInt32;
}

interface Player extends(Broker.Perspective) {
  # One user's seat at the Go server. Every game it hands out plays as this user.

  openChallenges @0 () -> (challenges :List(ChallengeInfo));
  # Challenges anyone (or this user, by name) may accept, oldest first, at most 100.
  challenge @1 (terms :ChallengeTerms) -> (challenge :Challenge, id :UInt64);
  # At most 5 open challenges per user (PARALLAX_ERR_QUOTA).
  accept @2 (id :UInt64) -> (game :Game);
  # NOT_FOUND for a challenge that is gone; PERMISSION_DENIED for one's own challenge or one
  # addressed to someone else.
  games @3 (includeFinished :Bool) -> (games :List(GameInfo));
  # This user's games, newest first, at most 100.
  game @4 (id :UInt64) -> (game :Game);
  # One of this user's games (after a reconnect: the same game, board, offers and clock).
  # NOT_FOUND for a game this user does not play in.
  watch @5 (id :UInt64) -> (spectator :Spectator);
  # Any game, read-only.
  rating @6 () -> (rating :Rating);
  playEngine @7 (terms :ChallengeTerms, engine :Text) -> (game :Game);
  # A game against one of the broker's GTP engines (by name, e.g. "gnugo"); NOT_FOUND if the
  # broker runs no such engine.
  cancelChallenge @8 (id :UInt64) -> (cancelled :Bool);
  # Withdraws one of this user's open challenges (false if it is gone or not theirs). A user's
  # open challenges are also withdrawn when their last attachment ends: nobody is matched with a
  # player who left.
}
