@0xe8a1f2c3b4d5e6f7;
# The demo bootstrap interface served by `npm start` until the login work lands, and the target
# of the benchmark and the interoperability test. It holds no authority worth guarding: anyone
# who connects may call every method.

interface Demo {
  # What a connection receives from Bootstrap.

  echo @0 (payload :Data) -> (payload :Data);
  # Answers with the bytes it was given.

  newCounter @1 (start :Int64) -> (counter :Counter);
  # Hands out a fresh counter that only the caller holds.

  sleep @2 (ms :UInt32) -> ();
  # Answers after `ms` milliseconds (at most 10 000): a slow call for concurrency tests.

  subscribe @3 (listener :Listener, count :UInt32) -> ();
  # Calls `listener.event(n)` for n = 1..count (at most 1000), in order, then answers.
  # The caller owns `listener`; the server drops its reference when done.

  fail @4 (reason :Text) -> ();
  # Fails with `reason`, to show how errors travel.
}

interface Counter {
  # A number only its holder can change.

  inc @0 (by :Int64 = 1) -> (self :Counter, value :Int64);
  # Adds `by`; answers the new value and the counter itself, so calls can be chained (pipelined).

  get @1 () -> (value :Int64);
}

interface Listener {
  # Implemented by clients, called by the server.

  event @0 (n :UInt32) -> ();
}
