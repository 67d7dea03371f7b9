/**
 * The demo bootstrap object (schema/demo.capnp): echo, counters, a slow call, callbacks and a
 * failing call. It guards nothing; it exists to exercise the engine, the benchmark and interop.
 *
 * Tests: test/rpc/rpc-connection.test.ts, test/interop/cpp-interop.test.ts
 */
import { ErrorCode, ParallaxError } from "../../errors.js";
import {
  Counter,
  type Counter$Server,
  type Counter_get_Params,
  type Counter_inc_Params,
  Demo,
  type Demo$Server,
  type Demo_echo_Params,
  type Demo_fail_Params,
  type Demo_newCounter_Params,
  type Demo_sleep_Params,
  type Demo_subscribe_Params,
} from "../../wire/gen/demo.js";
import type { CallContext } from "../../caps/index.js";

const MAX_SLEEP_MS = 10_000;
const MAX_EVENTS = 1000;

export class CounterServer implements Counter$Server {
  #value: bigint;

  constructor(start: bigint) {
    this.#value = start;
  }

  inc(params: Counter_inc_Params) {
    this.#value += params.by;
    return { self: this, value: this.#value };
  }

  get(_params: Counter_get_Params) {
    return { value: this.#value };
  }
}

export class DemoServer implements Demo$Server {
  echo(params: Demo_echo_Params) {
    return { payload: params.payload };
  }

  newCounter(params: Demo_newCounter_Params) {
    return { counter: new CounterServer(params.start) };
  }

  sleep(params: Demo_sleep_Params, ctx: CallContext): Promise<void> {
    const ms = Math.min(params.ms, MAX_SLEEP_MS);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new ParallaxError(ErrorCode.CANCELED, "sleep canceled"));
      });
    });
  }

  async subscribe(params: Demo_subscribe_Params): Promise<void> {
    const count = params.count;
    if (count > MAX_EVENTS) throw new ParallaxError(ErrorCode.BAD_ARGUMENT, `count is at most ${MAX_EVENTS}`);
    using listener = params.listener;
    for (let n = 1; n <= count; n++) await listener.event({ n });
  }

  fail(params: Demo_fail_Params): never {
    throw new ParallaxError(ErrorCode.FAILED, params.reason);
  }
}

/** A fresh demo bootstrap capability. */
export function demoBootstrap(): Demo {
  return Demo.server(new DemoServer());
}

export { Counter, Demo };
