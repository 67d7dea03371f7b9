/**
 * An index over a CodeGeneratorRequest: every node by id, the TypeScript name of every type, the
 * file each type lives in, and the doc comments the compiler passed along.
 *
 * Names follow capnp-ts: nested declarations join with `_` (`Outer_Inner`), groups and named
 * unions take their field name capitalized (`Shape_Rectangle`), and a method's implicit params
 * and results structs are `Interface_method_Params` / `Interface_method_Results`.
 *
 * Tests: test/codegen/
 */
import { CompositeList, ObjectSize, Struct } from "capnp-ts";
import { type CodeGeneratorRequest, type Node, Node_Which } from "capnp-ts/src/std/schema.capnp.js";
import { CodegenError } from "./codegen-error.js";

export interface DocInfo {
  readonly doc: string;
  readonly members: readonly string[];
}

/*
 * Node.SourceInfo is read through these minimal classes rather than capnp-ts's compiled
 * schema.capnp: that one comes from a newer schema whose SourceInfo is one word larger, and
 * capnp-ts "upgrades" (copies) lists of smaller structs when read, corrupting their pointers.
 * These match the layout the `capnp` tool writes (id; docComment, members).
 */
class SourceInfo extends Struct {
  static override readonly _capnp = {
    displayName: "SourceInfo",
    id: "f38e1de3041357ae",
    size: new ObjectSize(8, 2),
  };
}
class SourceInfoMember extends Struct {
  static override readonly _capnp = {
    displayName: "Member",
    id: "c2ba9038898e1fa2",
    size: new ObjectSize(0, 1),
  };
}
const SourceInfoList = CompositeList(SourceInfo);
const MemberList = CompositeList(SourceInfoMember);

export class SchemaIndex {
  readonly nodes = new Map<bigint, Node>();
  readonly names = new Map<bigint, string>();
  /** The file node that declares each node. */
  readonly fileOf = new Map<bigint, bigint>();
  readonly docs = new Map<bigint, DocInfo>();

  constructor(request: CodeGeneratorRequest) {
    for (const node of request.getNodes().toArray()) this.nodes.set(node.getId(), node);
    for (const info of Struct.getList(3, SourceInfoList, request).toArray()) {
      this.docs.set(Struct.getUint64(0, info), {
        doc: Struct.getText(0, info),
        members: Struct.getList(1, MemberList, info).map((m) => Struct.getText(0, m)),
      });
    }
    for (const node of this.nodes.values()) {
      if (node.which() === Node_Which.FILE) this.nameScope(node, "", node.getId());
    }
  }

  node(id: bigint, from?: string): Node {
    const n = this.nodes.get(id);
    if (n === undefined) {
      throw new CodegenError(
        `node @0x${id.toString(16)} is missing from the request${from ? ` (used by ${from})` : ""}`,
      );
    }
    return n;
  }

  name(id: bigint): string {
    const n = this.names.get(id);
    if (n === undefined) throw new CodegenError(`no name for ${this.describe(id)}`);
    return n;
  }

  describe(id: bigint): string {
    const n = this.nodes.get(id);
    return n === undefined ? `node @0x${id.toString(16)}` : `${n.getDisplayName()} (@0x${id.toString(16)})`;
  }

  doc(id: bigint): string {
    return this.docs.get(id)?.doc ?? "";
  }

  memberDoc(id: bigint, index: number): string {
    return this.docs.get(id)?.members[index] ?? "";
  }

  private nameScope(scope: Node, prefix: string, fileId: bigint): void {
    for (const nested of scope.getNestedNodes().toArray()) {
      const node = this.nodes.get(nested.getId());
      if (node === undefined) continue; // declared in a file this request did not load
      this.assign(node, prefix + nested.getName(), fileId);
    }
  }

  private assign(node: Node, name: string, fileId: bigint): void {
    const id = node.getId();
    this.names.set(id, name);
    this.fileOf.set(id, fileId);
    this.nameScope(node, `${name}_`, fileId);
    switch (node.which()) {
      case Node_Which.STRUCT:
        for (const field of node.getStruct().getFields().toArray()) {
          if (!field.isGroup()) continue;
          const group = this.nodes.get(field.getGroup().getTypeId());
          if (group !== undefined) this.assign(group, `${name}_${capitalize(field.getName())}`, fileId);
        }
        break;
      case Node_Which.INTERFACE:
        for (const method of node.getInterface().getMethods().toArray()) {
          for (const [typeId, suffix] of [
            [method.getParamStructType(), "Params"],
            [method.getResultStructType(), "Results"],
          ] as const) {
            const s = this.nodes.get(typeId);
            if (s !== undefined && s.getScopeId() === 0n) {
              this.assign(s, `${name}_${method.getName()}_${suffix}`, fileId);
            }
          }
        }
        break;
      default:
        break;
    }
  }
}

export function capitalize(s: string): string {
  return s.length === 0 ? s : s[0]?.toUpperCase() + s.slice(1);
}

/** `ultraViolet` → `ULTRA_VIOLET`. */
export function constantCase(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}
