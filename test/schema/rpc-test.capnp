@0xc4d2b6a8e0f13579;
# Interfaces the RPC engine's protocol tests use to drive promise resolution and embargoes.

interface Reflector {
  reflect @0 (cap :Sink, delayed :Bool) -> (cap :Sink);
  # Answers with `cap` itself: at once, or (delayed) as a promise capability that resolves to
  # `cap` when `open` is called.

  open @1 () -> ();
  # Resolves the pending promise capabilities handed out by `reflect`.

  broken @2 () -> (cap :Sink);
  # Answers with a promise capability that later breaks.
}

interface Sink {
  push @0 (n :UInt32) -> ();
}
