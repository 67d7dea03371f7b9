/**
 * Hooks on capabilities that live across one connection:
 * - `ImportClient`: an entry of our import table (senderHosted or senderPromise);
 * - `PipelineClient`: a capability inside the results of a question that has not returned yet
 *   (calls go out as `promisedAnswer` targets: promise pipelining).
 *
 * Both forward to their resolution once they have one. When that resolution is hosted on our
 * side and calls already went to the peer, new calls wait behind an embargo until the peer has
 * reflected the earlier ones back (E-order); the connection supplies that embargoed hook.
 *
 * The names follow capnproto's rpc.c++ (`ImportClient`, `PipelineClient`), where every other hook
 * here is a `*CapHook`: a reader coming from the reference implementation finds them by name.
 *
 * Tests: test/rpc/rpc-connection.test.ts, test/rpc/resolve-embargo.test.ts.
 */
import type { Struct } from "capnp-ts";
import type { CallOptions, CapHook, MethodDescriptor, ParamsFiller, ResultHook } from "../caps/index.js";
import type { ParallaxError } from "../errors.js";
import type { ImportId } from "../wire/rpc-ids.js";
import type { Question } from "./question-table.js";

export type Target =
  | { readonly kind: "import"; readonly id: ImportId }
  | { readonly kind: "answer"; readonly question: Question; readonly ops: readonly number[] };

/** What the hooks need from their connection. */
export interface RemoteSender {
  sendCall<P extends Struct, R extends Struct>(
    target: Target,
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options: CallOptions | undefined,
  ): ResultHook<R>;
  /** The last local reference on an import is gone. */
  importReleased(id: ImportId): void;
  /** Calls on this connection's capabilities fail with this once it is closed. */
  readonly closedError: ParallaxError | undefined;
}

abstract class RemoteHook implements CapHook {
  refs = 1;
  /** Set once this capability resolved (promise import or pipelined answer). */
  resolution: CapHook | undefined;
  readonly #resolved: Promise<void>;
  #markResolved!: () => void;

  constructor(
    readonly sender: RemoteSender,
    settledNow: boolean,
  ) {
    this.#resolved = settledNow
      ? Promise.resolve()
      : new Promise<void>((r) => {
          this.#markResolved = r;
        });
  }

  abstract get target(): Target;

  /** True once any call went to the peer through this hook's own target. */
  callsSent = false;

  call<P extends Struct, R extends Struct>(
    method: MethodDescriptor<P, R>,
    fill: ParamsFiller<P>,
    options?: CallOptions,
  ): ResultHook<R> {
    if (this.resolution !== undefined) return this.resolution.call(method, fill, options);
    this.callsSent = true;
    return this.sender.sendCall(this.target, method, fill, options);
  }

  addRef(): CapHook {
    this.refs++;
    return this;
  }

  abstract release(): void;

  whenResolved(): Promise<void> {
    return this.#resolved.then(() => this.resolution?.whenResolved());
  }

  resolved(): CapHook {
    return this.resolution === undefined ? this : this.resolution.resolved();
  }

  /** Switches the hook to `hook` (whose reference it takes over). */
  resolveTo(hook: CapHook): void {
    if (this.resolution !== undefined) {
      hook.release();
      return;
    }
    this.resolution = hook;
    this.#markResolved?.();
  }

  protected dropResolution(): void {
    const r = this.resolution;
    if (r !== undefined) r.release();
  }
}

export class ImportClient extends RemoteHook {
  constructor(
    sender: RemoteSender,
    readonly importId: ImportId,
    readonly isPromise: boolean,
  ) {
    super(sender, !isPromise);
  }

  get target(): Target {
    return { kind: "import", id: this.importId };
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs > 0) return;
    this.dropResolution();
    this.sender.importReleased(this.importId);
  }
}

export class PipelineClient extends RemoteHook {
  constructor(
    sender: RemoteSender,
    readonly question: Question,
    readonly ops: readonly number[],
  ) {
    super(sender, false);
  }

  get target(): Target {
    return { kind: "answer", question: this.question, ops: this.ops };
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs > 0) return;
    this.dropResolution();
  }
}
