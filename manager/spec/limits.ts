// Limits on what clients and agents send: every string, list and map a
// manager stores or reads on every tick has a bound, so that no request can
// make the leader's work (or etcd, or every task's copy of a spec) grow
// without one. Each limit is generous enough for real Docker and Compose
// specs; docs/limits.md is the table with the reasons. Lengths are UTF-8
// bytes unless the name says characters.

const KiB = 1024;

/**
 * The whole service spec, as JSON. Every task carries a copy of most of it
 * in etcd (a service keeps several tasks per slot in its history), and etcd
 * refuses requests over 1.5 MiB: 128 KiB leaves room for batches of tasks.
 */
export const SPEC_MAX_BYTES = 128 * KiB;

/** Replicated services: more tasks than any cluster Convoy aims at, small enough to stay an exact integer. */
export const REPLICAS_MAX = 1_000_000;

/** A DNS label (RFC 1123): the service name is what `<service>` resolves to. */
export const NAME_MAX_CHARS = 63;

/**
 * An image reference: Docker caps the repository name (registry included) at
 * 255 and a tag at 128; a digest is at most "sha512:" + 128 hex digits.
 * 1 KiB holds all three with room; the reference grammar's regex only ever
 * sees bounded input.
 */
export const IMAGE_MAX_BYTES = 1 * KiB;

/** Labels of a service, a container, a node, a network: as many as people write by hand, and more. */
export const LABELS_MAX = 64;
/** A label key: reverse-DNS keys ("com.example.team.owner") are well under this. */
export const LABEL_KEY_MAX_BYTES = 128;
/** A label value: room for a small JSON document, as people do put in labels. */
export const LABEL_VALUE_MAX_BYTES = 4 * KiB;

/** Entries of command, args and healthcheck.test: a command line, not a file list. */
export const ARGV_MAX = 1024;
/**
 * One argument or one "KEY=value" env entry. The kernel takes up to 128 KiB
 * per string (MAX_ARG_STRLEN) and Docker passes that on; here a whole spec is
 * 128 KiB, so one entry gets a quarter of it. Larger data belongs in a
 * mounted file.
 */
export const ARG_MAX_BYTES = 32 * KiB;
/** Env entries: Compose files with hundreds exist; thousands are a mistake. */
export const ENV_MAX = 1024;

/** A path inside the container or on the host (Linux PATH_MAX, 4096 with its NUL). */
export const PATH_MAX_BYTES = 4095;
/** "user", "uid", "user:group", "uid:gid": user and group names are at most 32 characters (useradd). */
export const USER_MAX_BYTES = 256;
/** "SIGRTMIN+3" and the like. */
export const SIGNAL_MAX_BYTES = 32;
/** A volume name: a file name on the node (NAME_MAX). */
export const VOLUME_NAME_MAX_BYTES = 255;

/** cap_add and cap_drop entries: Linux has 41 capabilities; more entries can only be repeats. */
export const CAPABILITIES_MAX = 64;
/** One capability name ("CAP_CHECKPOINT_RESTORE" is 22 characters). */
export const CAPABILITY_NAME_MAX_BYTES = 64;

/** Mounts of one container; each is a mount in its namespace, set up before it starts. */
export const MOUNTS_MAX = 256;

/** Published ports: each is a listener or an nftables rule on every node; Docker users publish ranges of a few hundred. */
export const PORTS_MAX = 1024;
/** A port's name ("http"; IANA service names are at most 15). */
export const PORT_NAME_MAX_BYTES = 63;
/** Networks a service attaches to: each is an interface in every task. */
export const NETWORKS_MAX = 64;
/** DNS aliases of a service on one network (compose `aliases`, plus a stack's short name). */
export const ALIASES_MAX = 32;

/** Placement constraints; all of them are checked against every node. */
export const CONSTRAINTS_MAX = 64;
/**
 * One constraint: "engine.labels.<longest key> != <longest value>" with
 * blanks fits (14 + 128 + 4 + 4096 bytes); the parser is linear anyway
 * (manager/scheduler/constraint.ts), this bounds its work per tick.
 */
export const CONSTRAINT_MAX_BYTES = 8 * KiB;
/** Spread preferences: each is a level of the spread tree, built per group of tasks. */
export const PREFERENCES_MAX = 16;
/** "spread=engine.labels.<longest key>". */
export const PREFERENCE_MAX_BYTES = 256;
/** Platforms a service names (os/arch pairs). */
export const PLATFORMS_MAX = 64;
/** An os or an arch ("linux", "arm64", "riscv64"). */
export const PLATFORM_FIELD_MAX_BYTES = 64;

/**
 * Every duration in a spec (ms). Node's timers take at most 2^31-1 ms and
 * fire after 1 ms beyond that: a huge healthcheck interval would probe in a
 * loop. That is ~24.8 days, more than any interval or grace period needs.
 */
export const DURATION_MAX_MS = 2 ** 31 - 1;
/** uint32 fields (parallelism, retries, per-node caps): what the wire can carry. */
export const UINT32_MAX = 2 ** 32 - 1;

/** The kernel needs a few MiB to start anything; Docker refuses below 6 MiB. */
export const MEMORY_LIMIT_MIN_BYTES = 4 * 1024 * KiB;
/** Autoscale targets, in percent of the reservation or limit. */
export const AUTOSCALE_TARGET = { min: 1, max: 1000 } as const;

/** A node's hostname as it reports it: a fully qualified name (RFC 1035: 253 characters). */
export const HOSTNAME_MAX_BYTES = 253;
/** A network's name: it is also a DNS label. */
export const NETWORK_NAME_MAX_CHARS = 63;
/** A subnet in CIDR notation ("ffff:...:ffff/128" is 43). */
export const SUBNET_MAX_BYTES = 64;

/**
 * A task status message or error from an agent: a sentence and an excerpt of
 * the error; longer ones are cut (see boundTaskStatus) rather than refused,
 * because the state change they come with must not be lost.
 */
export const STATUS_MESSAGE_MAX_BYTES = 4 * KiB;

/** How much of an offending value an error message quotes. */
export const QUOTE_MAX_CHARS = 80;

/** Secrets and configs one container gets (each a file bind-mounted from its task's tmpfs). */
export const FILE_REFS_MAX = 64;
/**
 * A secret's or config's value: Docker's limit (500 KiB). Sealed and base64
 * it is about 670 KiB of one etcd value, well under etcd's 1.5 MiB request
 * limit; and it travels to every node that runs a task using it.
 */
export const FILE_VALUE_MAX_BYTES = 500 * KiB;
/** A secret's or config's name (Docker's limit). */
export const FILE_NAME_MAX_CHARS = 64;
/** Where a secret or config is mounted in a container. */
export const FILE_TARGET_MAX_BYTES = 1024;
/** Ports a node reports it listens on, per protocol: the agent reports those below the ephemeral range (at most 32768 of them), cut to this. */
export const LISTENING_PORTS_MAX = 4096;
/** IPv4 addresses a node reports besides its underlay address (interfaces, Docker's bridges): each is an element of every node's firewall set. */
export const NODE_ADDRESSES_MAX = 256;
/** Finished runs of a job whose tasks are kept (`--history-limit`): each run keeps up to `replicas` tasks in etcd. */
export const JOB_HISTORY_MAX = 100;

// ---- container options (issue 13, docs/container-options.md) ----
/** Sysctls of one container: each is a write before it starts; runc users set a handful. */
export const SYSCTLS_MAX = 64;
/** A sysctl's name ("net.ipv4.conf.<ifname>.rp_filter" is under 64). */
export const SYSCTL_NAME_MAX_BYTES = 256;
/** A sysctl's value: what one write to /proc/sys takes (a page). */
export const SYSCTL_VALUE_MAX_BYTES = 4 * KiB;
/** Ulimits: Linux has 16 resources. */
export const ULIMITS_MAX = 16;
/** Extra /etc/hosts lines (compose files list a few; /etc/hosts is read whole on every lookup). */
export const HOSTS_MAX = 256;
/** One /etc/hosts line: an address and names. */
export const HOST_ENTRY_MAX_BYTES = 1 * KiB;
/** --dns servers the agent's DNS relays to in turn, each waited for up to its forward timeout. */
export const DNS_SERVERS_MAX = 8;
/** --dns-search domains: glibc reads at most 6 (MAXDNSRCH). */
export const DNS_SEARCH_MAX = 6;
/** --dns-option entries ("ndots:2", "timeout:1", "edns0"). */
export const DNS_OPTIONS_MAX = 16;
/** One --dns-option. */
export const DNS_OPTION_MAX_BYTES = 64;
/** Devices of one container (each a bind of a device node). */
export const DEVICES_MAX = 64;
/** A hostname template before rendering ("{{.Service.Name}}-{{.Task.Slot}}"); the rendered name is a DNS label (63). */
export const HOSTNAME_TEMPLATE_MAX_BYTES = 256;
