// Limits of the gRPC servers (the manager's Control + Dispatcher, the
// agent's local socket), so that one peer cannot make a server hold
// unbounded memory. Per-session stream caps live with the Dispatcher
// (manager/dispatcher/dispatcher.ts); list calls are paged (control.proto).
import type * as grpc from '@grpc/grpc-js';

/**
 * Largest request a server reads: a Control request is at most a 128 KiB spec,
 * an agent's status batch at most 200 updates of 2 × 4 KiB (manager/spec/limits.ts):
 * 4 MiB (gRPC's default, made explicit) leaves room and refuses anything larger
 * with RESOURCE_EXHAUSTED before it is parsed.
 */
export const MAX_RECEIVE_BYTES = 4 * 1024 * 1024;
/** Largest message a server sends: a COMPLETE assignment set of a busy node; the agents read up to this (agent/session/client-pool.ts). */
export const MAX_SEND_BYTES = 64 * 1024 * 1024;
/**
 * Concurrent streams per HTTP/2 connection (HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS;
 * Node's default is unlimited). The hollow fleet of bench:schedule runs 1,000
 * agents over one connection, each with 3 streams: 10,000 fits it and still
 * bounds a single client. A client past it waits for a stream to end.
 */
export const MAX_CONCURRENT_STREAMS = 10_000;
/** Memory (MB) nghttp2 may buffer per connection before it refuses new streams; grpc-js otherwise lifts the limit. Large enough for the hollow fleet's one connection. */
export const MAX_SESSION_MEMORY_MB = 256;

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
  'grpc.max_send_message_length': MAX_SEND_BYTES,
  'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
  'grpc-node.max_session_memory': MAX_SESSION_MEMORY_MB,
};

/** The agent's local socket (exec): few callers, small messages (exec frames). */
export const LOCAL_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_concurrent_streams': 64,
};
