import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { detachReason, Notifier } from "../../src/login/index.js";
import { RoomListener } from "../../src/wire/gen/lobby.js";
import { rejection } from "../helpers/errors.js";

/** A client listener whose answers the test releases by hand. */
function listener() {
  const got: string[] = [];
  const pending: Array<() => void> = [];
  let fail = false;
  const cap = RoomListener.server({
    said: ({ line }) => {
      got.push(line.text);
      if (fail) throw new Error("listener broke");
      return new Promise<void>((resolve) => pending.push(resolve));
    },
  });
  return {
    cap,
    got,
    answerAll: () => {
      for (const r of pending.splice(0)) r();
    },
    breakIt: () => {
      fail = true;
    },
  };
}

function notifier(options: { maxInFlight?: number; maxPerOwner?: number } = {}) {
  const drops: Array<{ count: number; last: string }> = [];
  const closes: string[] = [];
  const n = new Notifier<RoomListener, string>({
    ...options,
    deliver: (l, text) => l.said({ line: { speaker: "s", text, at: 0n } }),
    dropped: (l, info) => {
      drops.push(info);
      return l.said({ line: { speaker: "server", text: `dropped ${info.count}`, at: 0n } });
    },
    closed: (_l, reason) => {
      closes.push(reason.kind);
      return Promise.resolve();
    },
  });
  return { n, drops, closes };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

describe("Notifier", () => {
  it("keeps at most maxInFlight deliveries unanswered, drops the rest, then sends one dropped notice", async () => {
    const { n, drops } = notifier({ maxInFlight: 2 });
    const l = listener();
    n.add({}, l.cap);
    for (const t of ["1", "2", "3", "4", "5"]) n.notify(t);
    await settle();
    expect(l.got).toEqual(["1", "2"]);
    l.answerAll();
    await settle();
    expect(drops).toEqual([{ count: 3, last: "5" }]);
    expect(l.got).toEqual(["1", "2", "dropped 3"]);
    l.answerAll();
    await settle();
    n.notify("6");
    await settle();
    expect(l.got.at(-1)).toBe("6");
  });

  it("registers one capability once, however many stubs of it arrive", async () => {
    const { n } = notifier();
    const l = listener();
    expect(n.add({}, l.cap.dup())).toBe(true);
    expect(n.add({}, l.cap.dup())).toBe(false);
    n.notify("x");
    await settle();
    expect(l.got).toEqual(["x"]);
    expect(n.size).toBe(1);
  });

  it("refuses more than maxPerOwner listeners per owner with QUOTA, and disposes the refused stub", async () => {
    const { n } = notifier({ maxPerOwner: 2 });
    const owner = {};
    n.add(owner, listener().cap);
    n.add(owner, listener().cap);
    const extra = listener().cap;
    const err = await rejection(Promise.resolve().then(() => n.add(owner, extra)));
    expect(err.code).toBe(ErrorCode.QUOTA);
    expect(extra.disposed).toBe(true);
    // Another owner still has room.
    expect(n.add({}, listener().cap)).toBe(true);
  });

  it("removes only the leaving owner's listeners, telling them why unless they disconnected", async () => {
    const { n, closes } = notifier();
    const phone = {};
    const laptop = {};
    const a = listener();
    const b = listener();
    const c = listener();
    n.add(phone, a.cap);
    n.add(laptop, b.cap);
    n.add(laptop, c.cap);
    n.removeOwner(laptop, detachReason("detached", "bye"));
    n.notify("still here");
    await settle();
    expect(a.got).toEqual(["still here"]);
    expect(b.got).toEqual([]);
    expect(closes).toEqual(["detached", "detached"]);
    expect(b.cap.disposed && c.cap.disposed).toBe(true);
    n.removeOwner(phone, detachReason("disconnected", "gone"));
    expect(closes).toHaveLength(2);
    expect(n.size).toBe(0);
  });

  it("drops and disposes a listener whose delivery fails", async () => {
    const { n } = notifier();
    const l = listener();
    l.breakIt();
    n.add({}, l.cap);
    n.notify("boom");
    await settle();
    expect(n.size).toBe(0);
    expect(l.cap.disposed).toBe(true);
  });
});
