// The caps on what an image may make the agent download, hold in memory and
// unpack, with their defaults (docs/runtime.md, "Limits"). A module of its
// own, without imports, so that the CLI can show the defaults in its help
// without loading the agent.

/** Caps on what one layer may make the agent read, hold and create. */
export interface UnpackLimits {
  /** Decompressed bytes of one layer (headers, data and padding). */
  maxLayerBytes?: number;
  /** Entries in one layer (headers of files, dirs, links, devices; PAX and long-name headers not counted). */
  maxEntries?: number;
  /** One PAX header, GNU long name or sparse map. */
  maxHeaderBytes?: number;
  /** All PAX headers, long names and sparse maps of one layer together. */
  maxMetadataBytes?: number;
}

/**
 * 16 GiB: above the largest layers seen in practice (CUDA and ML framework
 * layers are 5–10 GiB uncompressed). A gzip bomb stops there: gzip expands
 * zeros ~1000×, so without a cap a 100 MiB blob unpacks to 100 GiB.
 */
export const DEFAULT_MAX_LAYER_BYTES = 16 * 1024 ** 3;
/** 1,000,000: a full distribution root is ~100k entries; each entry costs an inode. */
export const DEFAULT_MAX_LAYER_ENTRIES = 1_000_000;
/** 1 MiB, Go's archive/tar limit for one PAX header or GNU long name: PATH_MAX is 4 KiB, big xattrs are 64 KiB. */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;
/** 256 MiB: a PAX header of a few hundred bytes for each of DEFAULT_MAX_LAYER_ENTRIES, no more. */
export const DEFAULT_MAX_METADATA_BYTES = 256 * 1024 * 1024;

/** What one image may make the agent download, hold in memory and unpack. */
export interface ImageLimits extends UnpackLimits {
  /** One manifest or index (held in memory and parsed). */
  maxManifestBytes?: number;
  /** One image config (held in memory and parsed). */
  maxConfigBytes?: number;
}

/** 4 MiB, containerd's limit: a manifest of ~55 layers is ~10 KiB, an index of every platform ~20 KiB. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** 8 MiB: configs carry env, labels and one history line per layer; the largest seen are ~100 KiB. */
export const DEFAULT_MAX_CONFIG_BYTES = 8 * 1024 * 1024;
