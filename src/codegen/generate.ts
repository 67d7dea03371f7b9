/**
 * Turns a CodeGeneratorRequest into one TypeScript module per requested schema file.
 *
 * Emitted per file: enums (const objects), struct and group classes for the capnp-ts 0.9.3
 * runtime (accessors, `which()`, `$set(shape)`, `$toObject()`), a `$Pipeline` class per struct for
 * promise pipelining, per interface a client stub class, a `$Server` interface and a method
 * table, and constants. Anything the plugin cannot translate faithfully (generics) throws a
 * CodegenError naming the schema node: never silently wrong output.
 *
 * Tests: test/codegen/roundtrip.test.ts, reference.test.ts, rpc-schema.test.ts
 */
import { Message } from "capnp-ts";
import {
  CodeGeneratorRequest,
  type Field,
  type Node,
  Node_Which,
  type Type,
  Type_Which,
  type Value,
  Value_Which,
} from "capnp-ts/src/std/schema.capnp.js";
import path from "node:path";
import { CodegenError } from "./codegen-error.js";
import { CodeWriter } from "./code-writer.js";
import { capitalize, constantCase, SchemaIndex } from "./schema-index.js";

export interface GenerateOptions {
  /** The output path for a requested schema file, given its display name (e.g. `broker.capnp`). */
  outputPath(displayName: string): string;
  /** Path of `src/wire/gen-runtime.ts`, imported by every generated file. */
  runtimePath: string;
}

export function generateFromBytes(request: Uint8Array, options: GenerateOptions): Map<string, string> {
  // A copy that starts at offset 0: a Node Buffer's `slice()` is a view into a shared pool.
  const copy = new Uint8Array(request).buffer;
  return generate(new Message(copy, false).getRoot(CodeGeneratorRequest), options);
}

export function generate(request: CodeGeneratorRequest, options: GenerateOptions): Map<string, string> {
  const index = new SchemaIndex(request);
  const out = new Map<string, string>();
  for (const file of request.getRequestedFiles().toArray()) {
    const node = index.node(file.getId());
    const target = options.outputPath(node.getDisplayName());
    out.set(target, new FileEmitter(index, node, target, options).emit());
  }
  return out;
}

/** Properties of capnp-ts's Pointer/Struct that a field accessor must not shadow. */
const RESERVED_PROPS = new Set([
  "segment",
  "byteOffset",
  "_capnp",
  "constructor",
  "toString",
  "which",
  "prototype",
  "__proto__",
]);
/** Capability members a method stub must not shadow. */
const RESERVED_METHODS = new Set([
  "dispose",
  "dup",
  "castAs",
  "whenResolved",
  "disposed",
  "constructor",
  "toString",
  "then",
  "prototype",
  "__proto__",
]);
/** Promise members a pipeline getter must not shadow. */
const RESERVED_PIPELINE = new Set([
  "then",
  "catch",
  "finally",
  "dispose",
  "constructor",
  "prototype",
  "__proto__",
]);

interface Slot {
  readonly field: Field;
  readonly name: string;
  /** The accessor property name (the field name, or `name$` when that would shadow the runtime). */
  readonly prop: string;
  /** Capitalized name used in `getX`/`setX`. */
  readonly cap: string;
  readonly doc: string;
  /** The discriminant value when the field is a union member. */
  readonly disc: number | undefined;
}

/**
 * Primitive fields, read and written through the fast runtime (`$$.getInt32(this, byteOffset)`).
 * A field with a default stores `value XOR default` (the spec's encoding): `wrap` turns the XORed
 * raw value back into the type's range.
 */
const PRIMITIVE: Partial<
  Record<number, { fn: string; bytes: number; ts: string; wrap: (x: string) => string }>
> = {
  [Type_Which.INT8]: { fn: "Int8", bytes: 1, ts: "number", wrap: (x) => `((${x}) << 24) >> 24` },
  [Type_Which.INT16]: { fn: "Int16", bytes: 2, ts: "number", wrap: (x) => `((${x}) << 16) >> 16` },
  [Type_Which.INT32]: { fn: "Int32", bytes: 4, ts: "number", wrap: (x) => `(${x}) | 0` },
  [Type_Which.INT64]: { fn: "Int64", bytes: 8, ts: "bigint", wrap: (x) => `BigInt.asIntN(64, ${x})` },
  [Type_Which.UINT8]: { fn: "Uint8", bytes: 1, ts: "number", wrap: (x) => `(${x}) & 0xff` },
  [Type_Which.UINT16]: { fn: "Uint16", bytes: 2, ts: "number", wrap: (x) => `(${x}) & 0xffff` },
  [Type_Which.UINT32]: { fn: "Uint32", bytes: 4, ts: "number", wrap: (x) => `(${x}) >>> 0` },
  [Type_Which.UINT64]: { fn: "Uint64", bytes: 8, ts: "bigint", wrap: (x) => `BigInt.asUintN(64, ${x})` },
  [Type_Which.FLOAT32]: { fn: "Float32", bytes: 4, ts: "number", wrap: (x) => x },
  [Type_Which.FLOAT64]: { fn: "Float64", bytes: 8, ts: "number", wrap: (x) => x },
  [Type_Which.ENUM]: { fn: "Uint16", bytes: 2, ts: "number", wrap: (x) => `(${x}) & 0xffff` },
};

const PRIMITIVE_LIST: Partial<Record<number, string>> = {
  [Type_Which.VOID]: "$$.VoidList",
  [Type_Which.BOOL]: "$.BoolList",
  [Type_Which.INT8]: "$.Int8List",
  [Type_Which.INT16]: "$.Int16List",
  [Type_Which.INT32]: "$.Int32List",
  [Type_Which.INT64]: "$.Int64List",
  [Type_Which.UINT8]: "$.Uint8List",
  [Type_Which.UINT16]: "$.Uint16List",
  [Type_Which.UINT32]: "$.Uint32List",
  [Type_Which.UINT64]: "$.Uint64List",
  [Type_Which.FLOAT32]: "$.Float32List",
  [Type_Which.FLOAT64]: "$.Float64List",
  [Type_Which.ENUM]: "$.Uint16List",
  [Type_Which.TEXT]: "$.TextList",
  [Type_Which.DATA]: "$.DataList",
};

class FileEmitter {
  readonly #w = new CodeWriter();
  /** Trailing statements: list constructors and constants, which need every class defined. */
  readonly #tail = new CodeWriter();
  readonly #imports = new Map<bigint, string>();
  readonly #fileId: bigint;

  constructor(
    private readonly index: SchemaIndex,
    private readonly file: Node,
    private readonly target: string,
    private readonly options: GenerateOptions,
  ) {
    this.#fileId = file.getId();
  }

  emit(): string {
    const nodes = this.collect(this.file);
    const w = this.#w;
    for (const n of nodes) if (n.which() === Node_Which.ENUM) this.emitEnum(n);
    for (const n of nodes) if (n.which() === Node_Which.STRUCT) this.emitStruct(n);
    for (const n of this.sortInterfaces(nodes.filter((x) => x.which() === Node_Which.INTERFACE))) {
      this.emitInterface(n);
    }
    for (const n of nodes) if (n.which() === Node_Which.CONST) this.emitConst(n);
    const head = new CodeWriter();
    head.line(`// Generated by Parallax's capnp compiler plugin from ${this.file.getDisplayName()}.`);
    head.line("// Do not edit: change the schema and run `npm run gen`.");
    head.line("/* eslint-disable */");
    const body = `${w.toString()}${this.#tail.toString()}`;
    // Only what the body uses: a file of annotations alone needs neither runtime.
    if (/(^|[^$])\$\./m.test(body)) head.line('import * as $ from "capnp-ts";');
    if (body.includes("$$.")) head.line(`import * as $$ from "${this.relImport(this.options.runtimePath)}";`);
    for (const [fileId, alias] of [...this.#imports].sort((a, b) => a[1].localeCompare(b[1]))) {
      const other = this.index.node(fileId).getDisplayName();
      head.line(`import * as ${alias} from "${this.relImport(this.options.outputPath(other))}";`);
    }
    head.line();
    head.doc(this.index.doc(this.#fileId));
    head.line(`export const _capnpFileId = ${bigintLiteral(this.#fileId)};`);
    return `${head.toString()}${body}`;
  }

  // ---- collection and naming ------------------------------------------------------------------

  /** Every node declared in this file, in declaration order (nested after their parent). */
  private collect(scope: Node): Node[] {
    const out: Node[] = [];
    const visit = (n: Node): void => {
      this.checkNotGeneric(n);
      if (n.which() !== Node_Which.FILE) out.push(n);
      for (const nested of n.getNestedNodes().toArray()) {
        const child = this.index.nodes.get(nested.getId());
        if (child !== undefined) visit(child);
      }
      if (n.which() === Node_Which.STRUCT) {
        for (const f of n.getStruct().getFields().toArray()) {
          if (f.isGroup()) visit(this.index.node(f.getGroup().getTypeId(), n.getDisplayName()));
        }
      }
      if (n.which() === Node_Which.INTERFACE) {
        for (const m of n.getInterface().getMethods().toArray()) {
          for (const id of [m.getParamStructType(), m.getResultStructType()]) {
            const s = this.index.node(id, `${n.getDisplayName()}.${m.getName()}`);
            if (s.getScopeId() === 0n) visit(s);
          }
        }
      }
    };
    visit(scope);
    return out;
  }

  private checkNotGeneric(n: Node): void {
    if (n.getIsGeneric() || (n.hasParameters() && n.getParameters().getLength() > 0)) {
      throw new CodegenError(`${n.getDisplayName()}: generic types are not supported by the Parallax plugin`);
    }
  }

  private sortInterfaces(ifaces: Node[]): Node[] {
    const inFile = new Map(ifaces.map((n) => [n.getId(), n]));
    const done = new Set<bigint>();
    const out: Node[] = [];
    const visit = (n: Node): void => {
      if (done.has(n.getId())) return;
      done.add(n.getId());
      for (const s of n.getInterface().getSuperclasses().toArray()) {
        const sup = inFile.get(s.getId());
        if (sup !== undefined) visit(sup);
      }
      out.push(n);
    };
    for (const n of ifaces) visit(n);
    return out;
  }

  /** A reference to a named type from this file (prefixed with the import alias if foreign). */
  private ref(id: bigint, suffix = ""): string {
    const name = this.index.name(id) + suffix;
    const fileId = this.index.fileOf.get(id);
    if (fileId === undefined || fileId === this.#fileId) return name;
    let alias = this.#imports.get(fileId);
    if (alias === undefined) {
      const base = path
        .basename(this.index.node(fileId).getDisplayName(), ".capnp")
        .replace(/[^A-Za-z0-9_]/g, "_");
      alias = `$${base}`;
      while ([...this.#imports.values()].includes(alias)) alias += "_";
      this.#imports.set(fileId, alias);
    }
    return `${alias}.${name}`;
  }

  private relImport(targetPath: string): string {
    let rel = path.relative(path.dirname(this.target), targetPath).replace(/\\/g, "/");
    rel = rel.replace(/\.ts$/, ".js");
    return rel.startsWith(".") ? rel : `./${rel}`;
  }

  // ---- enums ----------------------------------------------------------------------------------

  private emitEnum(n: Node): void {
    const name = this.index.name(n.getId());
    const w = this.#w;
    w.doc(this.index.doc(n.getId()));
    w.block(
      `export const ${name} = {`,
      () => {
        n.getEnum()
          .getEnumerants()
          .forEach((e, i) => {
            w.doc(this.index.memberDoc(n.getId(), i));
            w.line(`${constantCase(e.getName())}: ${i},`);
          });
      },
      "} as const;",
    );
    w.line(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
    w.line();
  }

  // ---- structs --------------------------------------------------------------------------------

  private slotsOf(n: Node): Slot[] {
    const fields = n.getStruct().getFields().toArray();
    return fields
      .map((field, i) => {
        const name = field.getName();
        const disc = field.getDiscriminantValue();
        return {
          field,
          name,
          prop: RESERVED_PROPS.has(name) ? `${name}$` : name,
          cap: capitalize(name),
          doc: this.index.memberDoc(n.getId(), i),
          disc: disc === 0xffff ? undefined : disc,
        } satisfies Slot;
      })
      .sort((a, b) => a.field.getCodeOrder() - b.field.getCodeOrder());
  }

  private emitStruct(n: Node): void {
    const id = n.getId();
    const name = this.index.name(id);
    const st = n.getStruct();
    const slots = this.slotsOf(n);
    const discByte = st.getDiscriminantOffset() * 2;
    const hasUnion = st.getDiscriminantCount() > 0;
    const w = this.#w;
    const defaults: string[] = [];
    const lists: Array<[string, string, string]> = [];

    if (hasUnion) {
      w.block(
        `export const ${name}_Which = {`,
        () => {
          for (const s of slots) if (s.disc !== undefined) w.line(`${constantCase(s.name)}: ${s.disc},`);
        },
        "} as const;",
      );
      w.line(`export type ${name}_Which = (typeof ${name}_Which)[keyof typeof ${name}_Which];`);
      w.line();
    }

    // The shape: what `$set` accepts and `$toObject` returns.
    w.doc(`A plain-object form of {@link ${name}}: what \`$set\` accepts and \`$toObject\` returns.`);
    w.block(`export interface ${name}$Shape {`, () => {
      for (const s of slots) {
        w.doc(s.doc);
        w.line(`${s.prop}?: ${this.shapeTypeOfField(s.field, id)};`);
      }
    });
    w.line();

    w.doc(this.index.doc(id));
    w.block(`export class ${name} extends $.Struct {`, () => {
      const size = `new $.ObjectSize(${st.getDataWordCount() * 8}, ${st.getPointerCount()})`;
      for (const s of slots) {
        w.line();
        if (s.field.isGroup()) this.emitGroupField(s, discByte);
        else this.emitSlotField(name, s, discByte, defaults, lists);
      }
      if (hasUnion) {
        w.line();
        w.line(`which(): ${name}_Which { return $$.getUint16(this, ${discByte}) as ${name}_Which; }`);
      }
      w.line();
      this.emitSet(name, slots);
      w.line();
      this.emitToObject(name, slots);
      w.line();
      w.line(`override toString(): string { return "${name}_" + super.toString(); }`);
      w.line();
      for (const [prop, elem] of lists) w.line(`static ${prop}: $.ListCtor<${elem}>;`);
      const extra = defaults.length > 0 ? `, ${defaults.join(", ")}` : "";
      w.line(
        `static override readonly _capnp = { displayName: ${JSON.stringify(name)}, id: "${id.toString(16)}", size: ${size}${extra} };`,
      );
    });
    for (const [prop, , ctor] of lists) this.#tail.line(`${name}.${prop} = ${ctor};`);
    w.line();
    this.emitPipeline(name, slots);
  }

  private emitGroupField(s: Slot, discByte: number): void {
    const w = this.#w;
    const gid = s.field.getGroup().getTypeId();
    const G = this.ref(gid);
    w.doc(s.doc);
    if (s.disc !== undefined) {
      w.line(
        `get${s.cap}(): ${G} { $$.checkWhich(this, ${discByte}, ${s.disc}, ${JSON.stringify(s.name)}); return $$.group(${G}, this); }`,
      );
      w.block(`init${s.cap}(): ${G} {`, () => {
        w.line(`$$.setUint16(this, ${discByte}, ${s.disc});`);
        this.emitClearGroup(gid);
        w.line(`return $$.group(${G}, this);`);
      });
      w.line(`is${s.cap}(): boolean { return $$.getUint16(this, ${discByte}) === ${s.disc}; }`);
      w.line(`get ${s.prop}(): ${G} { return this.get${s.cap}(); }`);
      w.line(`set ${s.prop}(value: ${G}$Shape) { this.init${s.cap}().$set(value); }`);
    } else {
      w.line(`get${s.cap}(): ${G} { return $$.group(${G}, this); }`);
      w.line(`get ${s.prop}(): ${G} { return this.get${s.cap}(); }`);
      w.line(`set ${s.prop}(value: ${G}$Shape) { this.get${s.cap}().$set(value); }`);
    }
  }

  /** Zeroes every field (and any union discriminant) of a group being made the active union member. */
  private emitClearGroup(gid: bigint): void {
    const w = this.#w;
    const g = this.index.node(gid);
    const st = g.getStruct();
    if (st.getDiscriminantCount() > 0) w.line(`$$.setUint16(this, ${st.getDiscriminantOffset() * 2}, 0);`);
    for (const f of st.getFields().toArray()) {
      if (f.isGroup()) {
        this.emitClearGroup(f.getGroup().getTypeId());
        continue;
      }
      const slot = f.getSlot();
      const t = slot.getType();
      const off = slot.getOffset();
      const k = t.which();
      if (k === Type_Which.VOID) continue;
      if (k === Type_Which.BOOL) w.line(`$$.setBool(this, ${off}, false);`);
      else if (isPointerType(k)) w.line(`$$.clearPointer(${off}, this);`);
      else {
        const p = PRIMITIVE[k];
        if (p === undefined) continue;
        w.line(`$$.setUint${p.bytes * 8}(this, ${off * p.bytes}, ${p.bytes === 8 ? "0n" : "0"});`);
      }
    }
  }

  private emitSlotField(
    owner: string,
    s: Slot,
    discByte: number,
    defaults: string[],
    lists: Array<[string, string, string]>,
  ): void {
    const w = this.#w;
    const slot = s.field.getSlot();
    const t = slot.getType();
    const k = t.which();
    const off = slot.getOffset();
    const inUnion = s.disc !== undefined;
    const check = inUnion ? `$$.checkWhich(this, ${discByte}, ${s.disc}, ${JSON.stringify(s.name)}); ` : "";
    const setDisc = inUnion ? `$$.setUint16(this, ${discByte}, ${s.disc}); ` : "";
    const dv = slot.getHadExplicitDefault() ? slot.getDefaultValue() : undefined;
    const dname = `default${s.cap}`;
    w.doc(s.doc);

    if (k === Type_Which.VOID) {
      if (inUnion) {
        w.line(`is${s.cap}(): boolean { return $$.getUint16(this, ${discByte}) === ${s.disc}; }`);
        w.line(`set${s.cap}(): void { ${setDisc}}`);
      }
      return;
    }
    if (k === Type_Which.BOOL) {
      const def = dv?.getBool();
      const x = def ? " !== true" : "";
      w.line(`get${s.cap}(): boolean { ${check}return $$.getBool(this, ${off})${x}; }`);
      w.line(`set${s.cap}(value: boolean): void { ${setDisc}$$.setBool(this, ${off}, value${x}); }`);
      this.emitIsAndProp(s, discByte, "boolean", "boolean");
      return;
    }
    const prim = PRIMITIVE[k];
    if (prim !== undefined) {
      const byteOff = off * prim.bytes;
      const def = dv === undefined ? undefined : primitiveValue(dv);
      const needsMask = def !== undefined && ((def !== 0 && def !== 0n) || Object.is(def, -0));
      const ts = k === Type_Which.ENUM ? this.ref(t.getEnum().getTypeId()) : prim.ts;
      const cast = k === Type_Which.ENUM ? ` as ${ts}` : "";
      let get: string;
      let set: string;
      if (prim.fn.startsWith("Float")) {
        const bits = !needsMask
          ? ""
          : prim.bytes === 4
            ? `, ${floatBits32(def as number)}`
            : `, ${floatBits64(def as number)}n`;
        get = `$$.get${prim.fn}(this, ${byteOff}${bits})`;
        set = `$$.set${prim.fn}(this, ${byteOff}, value${bits})`;
      } else if (needsMask) {
        const d = literal(def as number | bigint);
        get = prim.wrap(`$$.get${prim.fn}(this, ${byteOff}) ^ ${d}`);
        set = `$$.set${prim.fn}(this, ${byteOff}, ${prim.wrap(`value ^ ${d}`)})`;
      } else {
        get = `$$.get${prim.fn}(this, ${byteOff})`;
        set = `$$.set${prim.fn}(this, ${byteOff}, value)`;
      }
      w.line(`get${s.cap}(): ${ts} { ${check}return ${cast ? `(${get})${cast}` : get}; }`);
      w.line(`set${s.cap}(value: ${ts}): void { ${setDisc}${set}; }`);
      this.emitIsAndProp(s, discByte, ts, ts);
      return;
    }

    // Pointer fields.
    const ptr = `$.Struct.getPointer(${off}, this)`;
    const has = `has${s.cap}(): boolean { return $$.hasPointer(this, ${off}); }`;
    const adoptDisown = (ty: string): void => {
      w.line(`adopt${s.cap}(value: $.Orphan<${ty}>): void { ${setDisc}$.Struct.adopt(value, ${ptr}); }`);
      w.line(`disown${s.cap}(): $.Orphan<${ty}> { return $.Struct.disown(this.get${s.cap}()); }`);
    };
    switch (k) {
      case Type_Which.TEXT: {
        const def = dv?.getText();
        const getter = def ? `$$.getText(this, ${off}, ${JSON.stringify(def)})` : `$$.getText(this, ${off})`;
        w.line(`get${s.cap}(): string { ${check}return ${getter}; }`);
        w.line(`set${s.cap}(value: string): void { ${setDisc}$$.setText(${off}, value, this); }`);
        w.line(has);
        this.emitIsAndProp(s, discByte, "string", "string");
        return;
      }
      case Type_Which.DATA: {
        const def =
          dv !== undefined && dv.which() === Value_Which.DATA && dv.hasData() ? dv.getData() : undefined;
        if (def !== undefined)
          defaults.push(`${dname}: new Uint8Array(${bytesLiteral([...def.toUint8Array()])})`);
        const fallback = def !== undefined ? `, ${owner}._capnp.${dname}` : "";
        w.line(`/** A view into the message: copy it to keep it beyond the message's life. */`);
        w.line(`get${s.cap}(): Uint8Array { ${check}return $$.getData(this, ${off}${fallback}); }`);
        w.line(
          `set${s.cap}(value: Uint8Array | $.Data): void { ${setDisc}$$.setData(${off}, value, this); }`,
        );
        w.line(
          `init${s.cap}(length: number): $.Data { ${setDisc}return $.Struct.initData(${off}, length, this); }`,
        );
        w.line(has);
        w.line(`adopt${s.cap}(value: $.Orphan<$.Data>): void { ${setDisc}$.Struct.adopt(value, ${ptr}); }`);
        w.line(
          `disown${s.cap}(): $.Orphan<$.Data> { return $.Struct.disown($.Struct.getData(${off}, this)); }`,
        );
        this.emitIsAndProp(s, discByte, "Uint8Array", "Uint8Array | $.Data");
        return;
      }
      case Type_Which.STRUCT: {
        const C = this.ref(t.getStruct().getTypeId());
        this.checkBrand(t, s);
        const def = dv === undefined ? undefined : this.pointerDefault(dv, Value_Which.STRUCT);
        if (def !== undefined) defaults.push(`${dname}: $$.rawPointer(${def})`);
        const dptr = def !== undefined ? `, ${owner}._capnp.${dname}` : "";
        w.line(`get${s.cap}(): ${C} { ${check}return $$.getStruct(this, ${off}, ${C}${dptr}); }`);
        w.line(`set${s.cap}(value: ${C}): void { ${setDisc}$.Struct.copyFrom(value, ${ptr}); }`);
        w.line(`init${s.cap}(): ${C} { ${setDisc}return $$.initStruct(this, ${off}, ${C}); }`);
        w.line(has);
        adoptDisown(C);
        if (inUnion)
          w.line(`is${s.cap}(): boolean { return $$.getUint16(this, ${discByte}) === ${s.disc}; }`);
        w.line(`get ${s.prop}(): ${C} { return this.get${s.cap}(); }`);
        w.line(
          `set ${s.prop}(value: ${C} | ${C}$Shape) { if (value instanceof ${C}) this.set${s.cap}(value); else this.init${s.cap}().$set(value); }`,
        );
        return;
      }
      case Type_Which.LIST: {
        const elem = this.listElemType(t, s);
        const ctor = this.listCtor(t, s);
        const prop = `_${s.cap}`;
        lists.push([prop, elem, ctor]);
        const def = dv === undefined ? undefined : this.pointerDefault(dv, Value_Which.LIST);
        if (def !== undefined) defaults.push(`${dname}: $$.rawPointer(${def})`);
        const dptr = def !== undefined ? `, ${owner}._capnp.${dname}` : "";
        const L = `$.List<${elem}>`;
        w.line(`get${s.cap}(): ${L} { ${check}return $$.getList(this, ${off}, ${owner}.${prop}${dptr}); }`);
        w.line(`set${s.cap}(value: ${L}): void { ${setDisc}$.Struct.copyFrom(value, ${ptr}); }`);
        w.line(
          `init${s.cap}(length: number): ${L} { ${setDisc}return $.Struct.initList(${off}, ${owner}.${prop}, length, this); }`,
        );
        w.line(has);
        adoptDisown(L);
        if (inUnion)
          w.line(`is${s.cap}(): boolean { return $$.getUint16(this, ${discByte}) === ${s.disc}; }`);
        w.line(`get ${s.prop}(): ${L} { return this.get${s.cap}(); }`);
        const kind = this.listKind(t, s);
        w.line(
          `set ${s.prop}(value: ${this.shapeType(t, s)}) { $$.setList(this.init${s.cap}(${lengthOf("value")}), value, ${kind}); }`,
        );
        return;
      }
      case Type_Which.INTERFACE: {
        const I = this.ref(t.getInterface().getTypeId());
        this.checkBrand(t, s);
        w.line(`get${s.cap}(): ${I} { ${check}return $$.readCap(${ptr}, ${I}); }`);
        w.line(
          `set${s.cap}(value: ${I} | ${I}$Server | null): void { ${setDisc}$$.writeCap(${ptr}, value, ${I}.$interface); }`,
        );
        w.line(has);
        this.emitIsAndProp(s, discByte, I, `${I} | ${I}$Server | null`);
        return;
      }
      case Type_Which.ANY_POINTER: {
        const ap = t.getAnyPointer();
        if (!ap.isUnconstrained()) {
          throw new CodegenError(`${this.where(s)}: generic type parameters are not supported`);
        }
        if (ap.getUnconstrained().isCapability()) {
          w.line(`get${s.cap}(): $$.Capability { ${check}return $$.readCap(${ptr}, $$.Capability); }`);
          w.line(`set${s.cap}(value: $$.Capability | null): void { ${setDisc}$$.writeCap(${ptr}, value); }`);
          w.line(has);
          this.emitIsAndProp(s, discByte, "$$.Capability", "$$.Capability | null");
          return;
        }
        w.line(`get${s.cap}(): $.Pointer { ${check}return ${ptr}; }`);
        w.line(`set${s.cap}(value: $.Pointer): void { ${setDisc}$.Struct.copyFrom(value, ${ptr}); }`);
        w.line(has);
        w.line(
          `adopt${s.cap}(value: $.Orphan<$.Pointer>): void { ${setDisc}$.Struct.adopt(value, ${ptr}); }`,
        );
        w.line(`disown${s.cap}(): $.Orphan<$.Pointer> { return $.Struct.disown(this.get${s.cap}()); }`);
        this.emitIsAndProp(s, discByte, "$.Pointer", "$.Pointer");
        return;
      }
      default:
        throw new CodegenError(`${this.where(s)}: unsupported field type ${k}`);
    }
  }

  private emitIsAndProp(s: Slot, discByte: number, getType: string, setType: string): void {
    const w = this.#w;
    if (s.disc !== undefined) {
      w.line(`is${s.cap}(): boolean { return $$.getUint16(this, ${discByte}) === ${s.disc}; }`);
    }
    w.line(`get ${s.prop}(): ${getType} { return this.get${s.cap}(); }`);
    w.line(`set ${s.prop}(value: ${setType}) { this.set${s.cap}(value); }`);
  }

  private emitSet(name: string, slots: Slot[]): void {
    const w = this.#w;
    w.doc("Sets every field present in `shape`; at most one union member may be present.");
    w.block(`$set(shape: ${name}$Shape): void {`, () => {
      const members = slots.filter((s) => s.disc !== undefined);
      if (members.length > 0) {
        const list = members.map((s) => `"${s.prop}"`).join(", ");
        w.line(
          `const members = [${list}].filter((k) => (shape as Record<string, unknown>)[k] !== undefined);`,
        );
        w.line(`if (members.length > 1) $$.unionConflict(${JSON.stringify(name)}, members);`);
      }
      for (const s of slots) {
        const v = `shape.${s.prop}`;
        if (!s.field.isGroup() && s.field.getSlot().getType().which() === Type_Which.VOID) {
          if (s.disc !== undefined) w.line(`if (${v} !== undefined) this.set${s.cap}();`);
          continue;
        }
        w.line(`if (${v} !== undefined) this.${s.prop} = ${v};`);
      }
    });
  }

  private emitToObject(name: string, slots: Slot[]): void {
    const w = this.#w;
    w.doc("Reads the struct into a plain object (capabilities become stubs that own a reference).");
    w.block(`$toObject(): ${name}$Shape {`, () => {
      w.line(`const o: ${name}$Shape = {};`);
      for (const s of slots) {
        const guard = s.disc !== undefined ? `if (this.is${s.cap}()) ` : "";
        if (s.field.isGroup()) {
          w.line(`${guard}o.${s.prop} = this.get${s.cap}().$toObject();`);
          continue;
        }
        const t = s.field.getSlot().getType();
        const k = t.which();
        const present = s.field.getSlot().getHadExplicitDefault() ? "" : `if (this.has${s.cap}()) `;
        switch (k) {
          case Type_Which.VOID:
            if (s.disc !== undefined) w.line(`${guard}o.${s.prop} = null;`);
            break;
          case Type_Which.DATA:
            w.line(`${guard}${present}o.${s.prop} = this.get${s.cap}().slice();`);
            break;
          case Type_Which.STRUCT:
            w.line(`${guard}${present}o.${s.prop} = this.get${s.cap}().$toObject();`);
            break;
          case Type_Which.LIST:
            w.line(
              `${guard}${present}o.${s.prop} = $$.listToArray(this.get${s.cap}(), ${this.listKind(t, s)}) as never;`,
            );
            break;
          case Type_Which.INTERFACE:
          case Type_Which.ANY_POINTER:
            w.line(`${guard}if (this.has${s.cap}()) o.${s.prop} = this.get${s.cap}();`);
            break;
          default:
            w.line(`${guard}o.${s.prop} = this.get${s.cap}();`);
        }
      }
      w.line("return o;");
    });
  }

  private emitPipeline(name: string, slots: Slot[]): void {
    const w = this.#w;
    w.doc(`The promise of a {@link ${name}}, for pipelining on its capability and struct fields.`);
    w.block(`export class ${name}$Pipeline extends $$.StructPipeline<${name}> {`, () => {
      for (const s of slots) {
        const prop = RESERVED_PIPELINE.has(s.name) ? `$${s.name}` : s.name;
        if (s.field.isGroup()) {
          const G = this.ref(s.field.getGroup().getTypeId());
          w.line(
            `get ${prop}(): ${G}$Pipeline { return this.$group(${G}$Pipeline, (s) => s.get${s.cap}()); }`,
          );
          continue;
        }
        const slot = s.field.getSlot();
        const t = slot.getType();
        const off = slot.getOffset();
        if (t.which() === Type_Which.INTERFACE) {
          const I = this.ref(t.getInterface().getTypeId());
          w.doc(s.doc);
          w.line(`get ${prop}(): ${I} { return this.$cap(${off}, ${I}); }`);
        } else if (t.which() === Type_Which.ANY_POINTER && t.getAnyPointer().isUnconstrained()) {
          if (t.getAnyPointer().getUnconstrained().isCapability()) {
            w.line(`get ${prop}(): $$.Capability { return this.$cap(${off}, $$.Capability); }`);
          }
        } else if (t.which() === Type_Which.STRUCT) {
          const C = this.ref(t.getStruct().getTypeId());
          w.line(
            `get ${prop}(): ${C}$Pipeline { return this.$struct(${off}, ${C}$Pipeline, (s) => s.get${s.cap}()); }`,
          );
        }
      }
    });
    w.line();
  }

  // ---- types ----------------------------------------------------------------------------------

  private where(s: Slot): string {
    return `field ${s.name}`;
  }

  private checkBrand(t: Type, s: Slot): void {
    const brand = t.isStruct()
      ? t.getStruct().getBrand()
      : t.isInterface()
        ? t.getInterface().getBrand()
        : undefined;
    if (brand?.hasScopes() && brand.getScopes().getLength() > 0) {
      throw new CodegenError(`${this.where(s)}: generic type bindings are not supported`);
    }
  }

  private shapeTypeOfField(f: Field, owner: bigint): string {
    if (f.isGroup()) return `${this.ref(f.getGroup().getTypeId())}$Shape`;
    return this.shapeType(f.getSlot().getType(), { name: `${this.index.describe(owner)}.${f.getName()}` });
  }

  private shapeType(t: Type, s: { name: string }): string {
    const k = t.which();
    switch (k) {
      case Type_Which.VOID:
        return "null";
      case Type_Which.BOOL:
        return "boolean";
      case Type_Which.TEXT:
        return "string";
      case Type_Which.DATA:
        return "Uint8Array | $.Data";
      case Type_Which.ENUM:
        return this.ref(t.getEnum().getTypeId());
      case Type_Which.STRUCT: {
        const C = this.ref(t.getStruct().getTypeId());
        return `${C} | ${C}$Shape`;
      }
      case Type_Which.LIST: {
        const e = t.getList().getElementType();
        return `readonly (${this.shapeType(e, s)})[] | $.List<${this.elemType(e, s)}>`;
      }
      case Type_Which.INTERFACE: {
        const I = this.ref(t.getInterface().getTypeId());
        return `${I} | ${I}$Server | null`;
      }
      case Type_Which.ANY_POINTER:
        return t.getAnyPointer().isUnconstrained() && t.getAnyPointer().getUnconstrained().isCapability()
          ? "$$.Capability | null"
          : "$.Pointer";
      default: {
        const p = PRIMITIVE[k];
        if (p === undefined) throw new CodegenError(`${s.name}: unsupported type ${k}`);
        return p.ts;
      }
    }
  }

  /** The element type of a `$.List<...>` holding values of type `t`. */
  private elemType(t: Type, s: { name: string }): string {
    const k = t.which();
    switch (k) {
      case Type_Which.VOID:
        return "$.Void";
      case Type_Which.BOOL:
        return "boolean";
      case Type_Which.TEXT:
        return "string";
      case Type_Which.DATA:
        return "$.Data";
      case Type_Which.ENUM:
        return "number";
      case Type_Which.STRUCT:
        return this.ref(t.getStruct().getTypeId());
      case Type_Which.LIST:
        return `$.List<${this.elemType(t.getList().getElementType(), s)}>`;
      case Type_Which.INTERFACE:
        return "$.Interface";
      case Type_Which.ANY_POINTER:
        throw new CodegenError(`${s.name}: lists of AnyPointer are not supported`);
      default: {
        const p = PRIMITIVE[k];
        if (p === undefined) throw new CodegenError(`${s.name}: unsupported list element type ${k}`);
        return p.ts;
      }
    }
  }

  private listElemType(t: Type, s: Slot): string {
    return this.elemType(t.getList().getElementType(), s);
  }

  private listCtor(t: Type, s: { name: string }): string {
    const e = t.getList().getElementType();
    const k = e.which();
    const prim = PRIMITIVE_LIST[k];
    if (prim !== undefined) return prim;
    switch (k) {
      case Type_Which.STRUCT:
        return `$.CompositeList(${this.ref(e.getStruct().getTypeId())})`;
      case Type_Which.LIST:
        return `$.PointerList(${this.listCtor(e, s)})`;
      case Type_Which.INTERFACE:
        return "$.InterfaceList";
      default:
        throw new CodegenError(`${s.name}: unsupported list element type ${k}`);
    }
  }

  private listKind(t: Type, s: { name: string }): string {
    const e = t.getList().getElementType();
    switch (e.which()) {
      case Type_Which.VOID:
        return "$$.VOID";
      case Type_Which.TEXT:
        return "$$.TEXT";
      case Type_Which.DATA:
        return "$$.DATA";
      case Type_Which.STRUCT:
        return "$$.STRUCT";
      case Type_Which.LIST:
        return `$$.listKind(${this.listCtor(e, s)}, ${this.listKind(e, s)})`;
      case Type_Which.INTERFACE:
        return `$$.capKind(${this.ref(e.getInterface().getTypeId())})`;
      default:
        return "$$.PRIM";
    }
  }

  /** A pointer default as a framed message literal, or undefined when it is null. */
  private pointerDefault(v: Value, expected: Value_Which): string | undefined {
    if (v.which() !== expected) return undefined;
    let p: import("capnp-ts").Pointer;
    switch (expected) {
      case Value_Which.DATA:
        if (!v.hasData()) return undefined;
        p = v.getData();
        break;
      case Value_Which.LIST:
        if (!v.hasList()) return undefined;
        p = v.getList();
        break;
      case Value_Which.STRUCT:
        if (!v.hasStruct()) return undefined;
        p = v.getStruct();
        break;
      default:
        if (!v.hasAnyPointer()) return undefined;
        p = v.getAnyPointer();
    }
    return bytesLiteral(framedCopy(p));
  }

  // ---- interfaces -----------------------------------------------------------------------------

  private emitInterface(n: Node): void {
    const id = n.getId();
    const name = this.index.name(id);
    const iface = n.getInterface();
    const methods = iface.getMethods().toArray();
    const supers = iface.getSuperclasses().toArray();
    for (const sc of supers) {
      if (sc.hasBrand() && sc.getBrand().hasScopes() && sc.getBrand().getScopes().getLength() > 0) {
        throw new CodegenError(`${n.getDisplayName()}: generic superclasses are not supported`);
      }
    }
    const w = this.#w;
    const mdesc = (m: (typeof methods)[number]): { P: string; R: string } => {
      if (m.hasImplicitParameters() && m.getImplicitParameters().getLength() > 0) {
        throw new CodegenError(`${n.getDisplayName()}.${m.getName()}: generic methods are not supported`);
      }
      return { P: this.ref(m.getParamStructType()), R: this.ref(m.getResultStructType()) };
    };

    w.doc(`The methods of {@link ${name}}, by schema name.`);
    w.block(
      `export const ${name}$methods = {`,
      () => {
        methods.forEach((m, i) => {
          const { P, R } = mdesc(m);
          w.line(
            `${m.getName()}: { interfaceId: ${bigintLiteral(id)}, interfaceName: ${JSON.stringify(name)}, methodId: ${i}, name: ${JSON.stringify(m.getName())}, Params: ${P}, Results: ${R} } as $$.MethodDescriptor<${P}, ${R}>,`,
          );
        });
      },
      "} as const;",
    );
    w.line();

    // Server interface.
    const superServers = supers.map((sc) => `${this.ref(sc.getId())}$Server`);
    w.doc(`What an implementation of {@link ${name}} provides. ${this.index.doc(id).trim()}`);
    const ext = superServers.length > 0 ? ` extends ${superServers.join(", ")}` : "";
    w.block(`export interface ${name}$Server${ext} {`, () => {
      methods.forEach((m, i) => {
        const { P, R } = mdesc(m);
        w.doc(this.index.memberDoc(id, i));
        w.line(`${m.getName()}(params: ${P}, ctx: $$.CallContext<${R}>): $$.MethodReturn<${R}$Shape>;`);
      });
    });
    w.line();

    // Client stub: extends the first superclass; methods of any further superclasses are flattened in.
    const base = supers.length > 0 ? this.ref(supers[0]?.getId() as bigint) : "$$.Capability";
    const inherited = new Set<bigint>();
    const collectAncestors = (ifaceId: bigint): void => {
      if (inherited.has(ifaceId)) return;
      inherited.add(ifaceId);
      for (const sc of this.index.node(ifaceId).getInterface().getSuperclasses().toArray())
        collectAncestors(sc.getId());
    };
    if (supers.length > 0) collectAncestors(supers[0]?.getId() as bigint);
    const extraAncestors: bigint[] = [];
    const visitExtra = (ifaceId: bigint): void => {
      if (inherited.has(ifaceId)) return;
      inherited.add(ifaceId);
      extraAncestors.push(ifaceId);
      for (const sc of this.index.node(ifaceId).getInterface().getSuperclasses().toArray())
        visitExtra(sc.getId());
    };
    for (const sc of supers.slice(1)) visitExtra(sc.getId());

    w.doc(this.index.doc(id));
    w.block(`export class ${name} extends ${base} {`, () => {
      w.line(`static override readonly $interface: $$.InterfaceDescriptor = {`);
      w.line(`  id: ${bigintLiteral(id)},`);
      w.line(`  name: ${JSON.stringify(name)},`);
      w.line(`  methods: Object.values(${name}$methods),`);
      w.line(`  superclasses: [${supers.map((sc) => `${this.ref(sc.getId())}.$interface`).join(", ")}],`);
      w.line(`};`);
      w.line();
      w.doc(`A local capability served by \`impl\`; the stub holds the first reference.`);
      const ov = supers.length > 0 ? "override " : "";
      w.line(
        `static ${ov}server(impl: ${name}$Server): ${name} { return new ${name}($$.localCapHook(${name}.$interface, impl)); }`,
      );
      const emitMethod = (
        ifaceName: string,
        ifaceId: bigint,
        m: (typeof methods)[number],
        i: number,
      ): void => {
        const { P, R } = mdesc(m);
        const stubName = RESERVED_METHODS.has(m.getName()) ? `${m.getName()}$` : m.getName();
        w.line();
        w.doc(this.index.memberDoc(ifaceId, i));
        w.block(
          `${stubName}(params?: $$.ParamsInit<${P}, ${P}$Shape>, options?: $$.CallOptions): ${R}$Pipeline {`,
          () => {
            w.line(
              `return new ${R}$Pipeline(this.$call(${ifaceName}$methods.${m.getName()}, params, options), []);`,
            );
          },
        );
      };
      methods.forEach((m, i) => {
        emitMethod(name, id, m, i);
      });
      for (const anc of extraAncestors) {
        this.index
          .node(anc)
          .getInterface()
          .getMethods()
          .forEach((m, i) => {
            emitMethod(this.ref(anc), anc, m, i);
          });
      }
    });
    w.line();
  }

  // ---- constants ------------------------------------------------------------------------------

  private emitConst(n: Node): void {
    const c = n.getConst();
    const t = c.getType();
    const v = c.getValue();
    const name = this.index.name(n.getId());
    const tw = this.#tail;
    tw.doc(this.index.doc(n.getId()));
    const k = t.which();
    switch (k) {
      case Type_Which.VOID:
        tw.line(`export const ${name} = null;`);
        return;
      case Type_Which.BOOL:
        tw.line(`export const ${name} = ${v.getBool()};`);
        return;
      case Type_Which.TEXT:
        tw.line(`export const ${name} = ${JSON.stringify(v.getText())};`);
        return;
      case Type_Which.DATA:
        tw.line(`export const ${name} = new Uint8Array(${bytesLiteral([...v.getData().toUint8Array()])});`);
        return;
      case Type_Which.ENUM:
        tw.line(`export const ${name}: ${this.ref(t.getEnum().getTypeId())} = ${v.getEnum()} as never;`);
        return;
      case Type_Which.STRUCT: {
        const C = this.ref(t.getStruct().getTypeId());
        tw.line(
          `export const ${name}: ${C} = $$.constStruct(${C}, ${bytesLiteral(framedCopy(v.getStruct()))});`,
        );
        return;
      }
      case Type_Which.LIST: {
        const ctor = this.listCtor(t, { name });
        tw.line(
          `export const ${name}: $.List<${this.elemType(t.getList().getElementType(), { name })}> = $$.constList(${ctor}, ${bytesLiteral(framedCopy(v.getList()))});`,
        );
        return;
      }
      case Type_Which.INTERFACE:
      case Type_Which.ANY_POINTER:
        throw new CodegenError(`${n.getDisplayName()}: constants of this type are not supported`);
      default: {
        const p = primitiveValue(v);
        tw.line(`export const ${name} = ${literal(p as number | bigint)};`);
      }
    }
  }
}

function isPointerType(k: number): boolean {
  return (
    k === Type_Which.TEXT ||
    k === Type_Which.DATA ||
    k === Type_Which.LIST ||
    k === Type_Which.STRUCT ||
    k === Type_Which.INTERFACE ||
    k === Type_Which.ANY_POINTER
  );
}

function primitiveValue(v: Value): number | bigint | boolean | undefined {
  switch (v.which()) {
    case Value_Which.BOOL:
      return v.getBool();
    case Value_Which.INT8:
      return v.getInt8();
    case Value_Which.INT16:
      return v.getInt16();
    case Value_Which.INT32:
      return v.getInt32();
    case Value_Which.INT64:
      return v.getInt64();
    case Value_Which.UINT8:
      return v.getUint8();
    case Value_Which.UINT16:
      return v.getUint16();
    case Value_Which.UINT32:
      return v.getUint32();
    case Value_Which.UINT64:
      return v.getUint64();
    case Value_Which.FLOAT32:
      return v.getFloat32();
    case Value_Which.FLOAT64:
      return v.getFloat64();
    case Value_Which.ENUM:
      return v.getEnum();
    default:
      return undefined;
  }
}

function literal(v: number | bigint): string {
  if (typeof v === "bigint") return `${v}n`;
  if (Number.isNaN(v)) return "Number.NaN";
  if (v === Number.POSITIVE_INFINITY) return "Number.POSITIVE_INFINITY";
  if (v === Number.NEGATIVE_INFINITY) return "Number.NEGATIVE_INFINITY";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

function floatBits32(v: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v, true);
  return dv.getUint32(0, true);
}

function floatBits64(v: number): bigint {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v, true);
  return dv.getBigUint64(0, true);
}

function bigintLiteral(v: bigint): string {
  return `0x${v.toString(16)}n`;
}

function bytesLiteral(bytes: readonly number[]): string {
  return `[${bytes.join(", ")}]`;
}

/** Deep-copies the object at `p` into a fresh single-segment message and frames it. */
function framedCopy(p: import("capnp-ts").Pointer): number[] {
  const m = new Message();
  m.setRoot(p);
  return [...new Uint8Array(m.toArrayBuffer())];
}

function lengthOf(v: string): string {
  return `Array.isArray(${v}) ? ${v}.length : (${v} as $.List<unknown>).getLength()`;
}
