/**
 * LiveLog and LogReader on their own: answers arriving out of order are appended in sequence,
 * answers arriving during a load are kept and put in after the snapshot, and a reader's
 * ephemeral notices are bounded while its messages are not dropped.
 */
import { describe, expect, it } from "vitest";
import { Capability } from "../../../src/caps/index.js";
import { BrokenCapHook } from "../../../src/caps/index.js";
import { ParallaxError } from "../../../src/errors.js";
import { LiveLog, LogReader } from "../../../src/services/chat/live-log.js";

interface E {
  readonly seq: number;
}
const e = (seq: number): E => ({ seq });

function appended(log: LiveLog<E>): number[] {
  const out: number[] = [];
  log.onAppend = (x) => out.push(x.seq);
  return out;
}

describe("LiveLog", () => {
  it("appends answers in sequence order whatever order they arrive in, each once", () => {
    const log = new LiveLog<E>(10);
    const out = appended(log);
    log.load([e(1), e(2)]);
    log.arrived(e(4));
    log.arrived(e(5));
    expect(out).toEqual([]);
    expect(log.pendingCount).toBe(2);
    log.arrived(e(3));
    log.arrived(e(3));
    log.arrived(e(2));
    expect(out).toEqual([3, 4, 5]);
    expect([log.lastSeq, log.pendingCount]).toEqual([5, 0]);
  });

  it("keeps what arrives during the load and adds only what the snapshot lacks", () => {
    const log = new LiveLog<E>(10);
    const out = appended(log);
    log.arrived(e(3));
    log.arrived(e(4));
    expect(log.loaded).toBe(false);
    log.load([e(1), e(2), e(3)]);
    expect(out).toEqual([4]);
    expect(log.feed.read(0, 10).entries.map((x) => x.seq)).toEqual([1, 2, 3, 4]);
  });

  it("after a load of the newest entries only, says reading from before them is lost", () => {
    const log = new LiveLog<E>(3);
    log.load([e(8), e(9), e(10)]);
    expect(log.feed.read(2, 10).resumedFrom).toBe(8);
    expect(log.feed.read(7, 10).resumedFrom).toBeUndefined();
  });
});

class Stub extends Capability {}

describe("LogReader", () => {
  it("bounds unanswered notices (dropping the rest) but reads every message from the log when behind", async () => {
    const log = new LiveLog<E>(100);
    log.load([]);
    const answers: Array<() => void> = [];
    const got: number[] = [];
    let notices = 0;
    const reader = new LogReader<E, Stub>({
      log,
      listener: new Stub(new BrokenCapHook(new ParallaxError("PARALLAX_ERR_FAILED", "unused"))),
      maxInFlight: 2,
      maxEphemeralInFlight: 1,
      deliver: (_l, x) => {
        got.push(x.seq);
        return new Promise<void>((resolve) => answers.push(resolve));
      },
      unrecoverable: () => Promise.resolve(),
      onFailed: () => {},
    });
    log.onAppend = (x) => reader.offer(x);
    reader.start(0, 0);
    for (let i = 1; i <= 5; i++) log.arrived(e(i));
    expect(got).toEqual([1, 2]);
    for (let i = 0; i < 3; i++)
      reader.notice(() => {
        notices++;
        return new Promise<void>(() => {});
      });
    expect(notices).toBe(1);
    while (got.length < 5) {
      for (const a of answers.splice(0)) a();
      await new Promise((r) => setImmediate(r));
    }
    expect(got).toEqual([1, 2, 3, 4, 5]);
    reader.close();
    log.arrived(e(6));
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(reader.listener.disposed).toBe(true);
  });
});
