// gRPC service definitions built straight from the build's JSON descriptors
// (proto/gen-descriptors.js) with protobufjs's light build: what
// @grpc/proto-loader's fromJSON gives for services, with the same
// conversions (proto-loader's serializer is `encode(fromObject(x))`, its
// deserializer `toObject(decode(b), options)`), minus the descriptor protos
// it builds for every message for gRPC reflection, which Convoy does not
// serve. That is most of a CLI start's proto cost (measured: docs/cli.md).
//
// servicesFromCodecs does the same from proto/generated/<name>-codec.ts,
// protobufjs's generated functions written out at build time: no reflection
// tree and no code generation at start-up (what the programs use).
import type * as protobuf from 'protobufjs/light';
import type * as grpc from '@grpc/grpc-js';

export interface ConversionOptions {
  longs?: typeof Number | typeof String;
  enums?: typeof String;
  defaults?: boolean;
  arrays?: boolean;
  objects?: boolean;
  oneofs?: boolean;
}

/** Options shared by the loader, the codecs and the type generator (see package.json "proto"); proto/mod.ts's LOADER_OPTIONS. */
export const LOADER_OPTIONS: ConversionOptions & { keepCase: boolean } = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

type MethodDefinition = grpc.MethodDefinition<object, object> & { originalName: string };
export type ServicesDefinition = Record<string, Record<string, MethodDefinition>>;

/** What serializer and deserializer use of a type: protobufjs's Type, or a build's codec of one. */
interface Codec {
  name: string;
  encode(m: object): { finish(): Uint8Array };
  decode(b: Uint8Array): object;
  fromObject(x: object): object;
  toObject(m: object, o?: protobuf.IConversionOptions): object;
}

function serializer(cls: Codec): (x: object) => Buffer {
  return (x) => {
    if (Array.isArray(x)) throw new Error(`Failed to serialize message: expected object with ${cls.name} structure, got array instead`);
    return cls.encode(cls.fromObject(x)).finish() as Buffer;
  };
}

function deserializer(cls: Codec, o: ConversionOptions): (b: Buffer) => object {
  return (b) => cls.toObject(cls.decode(b), o as protobuf.IConversionOptions);
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** `{ 'convoy.Control': { CreateService: {...}, ... } }`, the services shape grpc.loadPackageDefinition takes. */
export function servicesFromJSON(json: protobuf.INamespace, o: ConversionOptions): ServicesDefinition {
  // Only without a build's codecs (and in the test comparing both): the reflection half of protobufjs stays unloaded.
  const protobuf = require('protobufjs/light') as typeof import('protobufjs/light');
  const root = protobuf.Root.fromJSON(json);
  root.resolveAll();
  const out: ServicesDefinition = {};
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        const name = obj.fullName.replace(/^\./, '');
        const def: Record<string, MethodDefinition> = {};
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType!;
          const res = m.resolvedResponseType!;
          def[m.name] = {
            path: `/${name}/${m.name}`,
            requestStream: !!m.requestStream,
            responseStream: !!m.responseStream,
            requestSerialize: serializer(req),
            requestDeserialize: deserializer(req, o),
            responseSerialize: serializer(res),
            responseDeserialize: deserializer(res, o),
            originalName: lowerFirst(m.name),
          };
        }
        out[name] = def;
      } else if (obj instanceof protobuf.Namespace) {
        walk(obj);
      }
    }
  };
  walk(root);
  return out;
}

/** A build's codecs of one .proto file (proto/gen-descriptors.js writes them to proto/generated/<name>-codec.ts). */
export interface Codecs {
  /** service full name -> [method, request type, response type, requestStream, responseStream] */
  services: Record<string, [string, string, string, boolean, boolean][]>;
  types: Record<string, Codec>;
}

/** The same definitions as servicesFromJSON, from a build's codecs. */
export function servicesFromCodecs(c: Codecs, o: ConversionOptions): ServicesDefinition {
  const out: ServicesDefinition = {};
  for (const [name, methods] of Object.entries(c.services)) {
    const def: Record<string, MethodDefinition> = {};
    for (const [method, reqName, resName, requestStream, responseStream] of methods) {
      const req = c.types[reqName];
      const res = c.types[resName];
      def[method] = {
        path: `/${name}/${method}`,
        requestStream,
        responseStream,
        requestSerialize: serializer(req),
        requestDeserialize: deserializer(req, o),
        responseSerialize: serializer(res),
        responseDeserialize: deserializer(res, o),
        originalName: lowerFirst(method),
      };
    }
    out[name] = def;
  }
  return out;
}
