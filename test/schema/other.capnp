@0xa1c3e5f7092b4d6f;
# A second file, imported by everything.capnp, to prove cross-file references.

struct Remote {
  id @0 :UInt64;
  tags @1 :List(Text);
}
