// Type declarations of the edgefeed package (index.js, index.mjs).

/** The C library's return-code names, found on every rejection's `code`. */
export type ErrorCode =
  | 'EF_EINVAL' | 'EF_ENOTFOUND' | 'EF_EBUSY' | 'EF_ECORRUPT'
  | 'EF_ENOMEM' | 'EF_EIO' | 'EF_EFULL' | 'EF_EVERSION';

/** How every call rejects: `code` is the C name, `message` the library's
 * detail ("ip: not an IPv4 or IPv6 address (5 bytes)"). A call on a closed
 * store rejects with 'EF_EINVAL', message "store is closed". */
export interface EdgefeedError extends Error {
  code: ErrorCode;
  errno: number;
}

export interface OpenOptions {
  /** Concurrent finalizations of every process and thread with the store
   * open share one transaction and one sync (group commit, the library's
   * default: true; false is EF_NO_GROUP_COMMIT). */
  groupCommit?: boolean;
  /** Newest entries kept per owner (default 100). */
  feedCap?: number;
  /** Entries older than this are stale (default 90 days). */
  feedTtlMs?: number;
  /** IPs are returned, and kept readable, only this long (default 30 days). */
  ipRetentionMs?: number;
  /** Do not fsync on commit: the last commits may be lost on power loss. */
  noSync?: boolean;
  /** Open read-only: every write rejects with 'EF_EINVAL'. */
  readOnly?: boolean;
  /** Open an existing store only ('EF_ENOTFOUND' where there is none). */
  noCreate?: boolean;
  /** Never wait for another process's exclusive hold ('EF_EBUSY'). */
  noWait?: boolean;
}

export interface Receive {
  /** Canonicalized: ASCII white space trimmed, ASCII letters lowercased. */
  owner: string;
  /** Taken as given (case-sensitive). */
  reservationId: string;
  /** Epoch milliseconds, a Date, or text (epoch ms or ISO-8601); absent: now. */
  createdAt?: number | Date | string | null;
  /** IPv4 or IPv6 text. */
  ip?: string | null;
  /** A JSON object (at most 16 KiB serialized), or its JSON text. */
  payload?: Record<string, unknown> | string | null;
}

/** One feed entry: the CLI's JSON shape. */
export interface Entry {
  reservationId: string;
  /** ISO-8601 UTC with milliseconds. */
  createdAt: string;
  createdMs: number;
  /** null when none was given, or past ipRetentionMs. */
  ip: string | null;
  unread: boolean;
  /** The payload as finalized, parsed; null when none was given. */
  payload: Record<string, unknown> | null;
}

export interface FinalizeResult {
  /** 'duplicate': the reservation was there already; nothing changed. */
  status: 'created' | 'duplicate';
  /** The entry as the store has it (the first write's), or null when it
   * was trimmed at once (stale or beyond the owner's feedCap). */
  entry: Entry | null;
}

export interface Page {
  /** Newest first. */
  entries: Entry[];
  /** Pass as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

export interface SweepStats {
  nowMs: number; keysDestroyed: number; keyringSlotsWiped: number;
  entriesDeleted: number; markersDropped: number; recordsResealed: number;
  legacySealed: number; batches: number;
}

export interface MigrateStats {
  dryRun: boolean; owners: number; elements: number; migrated: number;
  duplicatesMerged: number; quarantined: number; keptWithoutIp: number;
  markersKept: number; orphanMarkers: number; batches: number;
}

export interface CheckResult {
  /** true when every invariant holds. */
  ok: boolean;
  violations: number; keys: number; entries: number; indexKeys: number;
  unreadMarkers: number; legacyArrays: number; quarantined: number;
  /** The first 1,000 violations. */
  found: { violation: string; key: string }[];
}

export declare class Store {
  /** Same as open(dir, options). */
  constructor(dir: string, options?: OpenOptions);
  /** Resolves to the store once it is open; rejects with the open's error. */
  readonly ready: Promise<Store>;
  finalize(receive: Receive): Promise<FinalizeResult>;
  page(owner: string, options?: { limit?: number; cursor?: string | null }): Promise<Page>;
  /** null when the owner has no such entry. */
  get(owner: string, reservationId: string): Promise<Entry | null>;
  unread(owner: string): Promise<number>;
  /** Rejects with 'EF_ENOTFOUND' when the owner has no such reservation. */
  markRead(owner: string, reservationId: string): Promise<void>;
  markAllRead(owner: string): Promise<void>;
  sweep(): Promise<SweepStats>;
  migrate(options?: { dryRun?: boolean; batch?: number }): Promise<MigrateStats>;
  check(options?: { strict?: boolean }): Promise<CheckResult>;
  /** Idempotent; resolves once the calls in flight finished and the store
   * is closed. */
  close(): Promise<void>;
}

/** Open (creating it unless readOnly or noCreate) the store in `dir`, or
 * the store on Redis Cluster that a `redis://HOST:PORT[,...][?store=NAME]`
 * address names. Each process opens its own; stores of one directory (or
 * address) opened in several worker_threads of a process share one native
 * handle. */
export declare function open(dir: string, options?: OpenOptions): Store;

/** The C library's version, "0.1.0". */
export declare const version: string;

export declare const limits: {
  readonly payloadMax: number;
  readonly createdMax: number;
  readonly pageLimitMax: number;
  readonly pageLimitDefault: number;
};
