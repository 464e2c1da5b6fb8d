// convoy-init: the few things Node.js cannot do for Convoy's container runtime.
//
//   convoy-init run      start a container and stay as its monitor (logs, exit status)
//   convoy-init exec     run a process inside a running container (setns)
//   convoy-init fixup R  apply layer entries Node cannot create under root dir R
//                        (overlay whiteouts, opaque dirs, device nodes, xattrs),
//                        every path resolved beneath R (openat2 RESOLVE_BENEATH)
//   convoy-init netcfg   configure the inside of task network namespaces
//                        (rtnetlink), many per call: one process for a burst
//                        of tasks instead of an `nsenter ip` per task
//
// Protocol (docs/runtime.md): the caller writes the configuration on fd 3 as a
// sequence of NUL-terminated strings and shuts down its write side. For run and
// exec the strings are key/value pairs; for fixup they are operations with a
// fixed number of arguments. `run` answers on the same fd 3 (a socketpair made
// by Node) with one line: "ok <container pid> <monitor pid>\n" or
// "error <message>\n", then closes it.
//
// Seccomp: an allowlist with the semantics of Docker's default profile
// (seccomp-allow.h): every other syscall fails with EPERM; syscalls Docker
// ties to a capability are allowed only when the container has it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 512
#define CONFIG_FD 3

#include "seccomp-allow.h"

// ---------------------------------------------------------------- errors

static int g_errfd = -1; // where fatal errors go ("error <msg>\n")

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  char msg[1024];
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  char line[1200];
  int len;
  if (saved) len = snprintf(line, sizeof line, "error %s: %s\n", msg, strerror(saved));
  else len = snprintf(line, sizeof line, "error %s\n", msg);
  if (g_errfd >= 0) {
    if (write(g_errfd, line, (size_t)len) < 0) {}
  } else {
    if (write(2, line + 6, (size_t)len - 6) < 0) {}
  }
  _exit(127);
}

// ---------------------------------------------------------------- config

struct mountspec {
  const char *type; // bind | tmpfs
  const char *src;
  const char *dst;
  const char *data;
  int ro;
  // an operator's bind (admitted by the agent on its resolved path): no
  // symlink may be on the path at mount time (one swapped in after the
  // agent's check would lead elsewhere)
  int nofollow;
};

struct config {
  // run + exec
  const char *args[MAX_ITEMS + 1];
  int nargs;
  const char *env[MAX_ITEMS + 1];
  int nenv;
  const char *cgroups[32];
  int ncgroups;
  const char *cwd;
  const char *user;
  int caps[64];
  int ncaps;
  int caps_given;
  struct { int res; rlim_t soft, hard; } rlimits[16];
  int nrlimits;
  int seccomp;
  const char *seccompcache; // dir of compiled filters, per capability set
  // run
  const char *lowers[MAX_ITEMS];
  int nlowers;
  const char *lowerbase;
  const char *upper, *work, *merged;
  const char *hostname;
  const char *netns;
  struct mountspec mounts[64];
  int nmounts;
  int readonly;
  // container options (issue 13, docs/container-options.md)
  const char *sysctls[64]; // "name=value", name with dots
  int nsysctls;
  int init;       // stay as PID 1: reap orphans, forward signals
  int openstdin;  // stdin a pipe the monitor holds open, not /dev/null
  int privileged; // no masked paths, /proc/sys and /sys writable
  const char *log;
  long long logmax;
  int logfiles;
  const char *exitfile;
  // exec
  int pid;
  int tty;
  int rows, cols;
  int ctlfd; // tty: "rows cols\n" lines resize the terminal; -1 = none
};

static char *read_all(int fd, size_t *len) {
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap);
  if (!buf) die("out of memory");
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf) die("out of memory");
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read config");
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

// Splits a NUL-separated buffer into strings.
static int split(char *buf, size_t len, const char ***out) {
  int count = 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] == 0) count++;
  const char **v = calloc((size_t)count + 1, sizeof *v);
  if (!v) die("out of memory");
  int k = 0;
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] == 0) {
      v[k++] = buf + start;
      start = i + 1;
    }
  }
  *out = v;
  return count;
}

static void parse_config(struct config *c, const char **kv, int n) {
  memset(c, 0, sizeof *c);
  c->seccomp = 1;
  c->logfiles = 3;
  c->logmax = 10 * 1024 * 1024;
  c->ctlfd = -1;
  struct mountspec *m = NULL;
  if (n % 2) die("config: odd number of strings");
  for (int i = 0; i < n; i += 2) {
    const char *k = kv[i], *v = kv[i + 1];
    if (!strcmp(k, "arg")) { if (c->nargs < MAX_ITEMS) c->args[c->nargs++] = v; }
    else if (!strcmp(k, "env")) { if (c->nenv < MAX_ITEMS) c->env[c->nenv++] = v; }
    else if (!strcmp(k, "cgroup")) { if (c->ncgroups < 32) c->cgroups[c->ncgroups++] = v; }
    else if (!strcmp(k, "cwd")) c->cwd = v;
    else if (!strcmp(k, "user")) c->user = v;
    else if (!strcmp(k, "cap")) { c->caps_given = 1; if (*v && c->ncaps < 64) c->caps[c->ncaps++] = atoi(v); }
    else if (!strcmp(k, "rlimit")) {
      // "<resource>:<soft>:<hard>"
      if (c->nrlimits < 16) {
        char *e;
        int res = (int)strtol(v, &e, 10);
        if (*e != ':') die("config: bad rlimit %s", v);
        unsigned long long s = strtoull(e + 1, &e, 10);
        if (*e != ':') die("config: bad rlimit %s", v);
        unsigned long long h = strtoull(e + 1, &e, 10);
        c->rlimits[c->nrlimits].res = res;
        c->rlimits[c->nrlimits].soft = (rlim_t)s;
        c->rlimits[c->nrlimits].hard = (rlim_t)h;
        c->nrlimits++;
      }
    }
    else if (!strcmp(k, "seccomp")) c->seccomp = strcmp(v, "none") != 0;
    else if (!strcmp(k, "seccompcache")) c->seccompcache = v;
    else if (!strcmp(k, "lower")) { if (c->nlowers < MAX_ITEMS) c->lowers[c->nlowers++] = v; }
    else if (!strcmp(k, "lowerbase")) c->lowerbase = v;
    else if (!strcmp(k, "upper")) c->upper = v;
    else if (!strcmp(k, "work")) c->work = v;
    else if (!strcmp(k, "merged")) c->merged = v;
    else if (!strcmp(k, "hostname")) c->hostname = v;
    else if (!strcmp(k, "netns")) c->netns = v;
    else if (!strcmp(k, "readonly")) c->readonly = !strcmp(v, "1");
    else if (!strcmp(k, "sysctl")) { if (c->nsysctls >= 64) die("config: too many sysctls"); c->sysctls[c->nsysctls++] = v; }
    else if (!strcmp(k, "init")) c->init = !strcmp(v, "1");
    else if (!strcmp(k, "stdin")) c->openstdin = !strcmp(v, "open");
    else if (!strcmp(k, "privileged")) c->privileged = !strcmp(v, "1");
    else if (!strcmp(k, "log")) c->log = v;
    else if (!strcmp(k, "logmax")) c->logmax = atoll(v);
    else if (!strcmp(k, "logfiles")) c->logfiles = atoi(v);
    else if (!strcmp(k, "exitfile")) c->exitfile = v;
    else if (!strcmp(k, "pid")) c->pid = atoi(v);
    else if (!strcmp(k, "tty")) c->tty = !strcmp(v, "1");
    else if (!strcmp(k, "rows")) c->rows = atoi(v);
    else if (!strcmp(k, "cols")) c->cols = atoi(v);
    else if (!strcmp(k, "ctl")) c->ctlfd = atoi(v);
    else if (!strcmp(k, "mnt")) {
      if (c->nmounts >= 64) die("config: too many mounts");
      m = &c->mounts[c->nmounts++];
      m->type = v;
    }
    else if (!strcmp(k, "mnt.src")) { if (m) m->src = v; }
    else if (!strcmp(k, "mnt.dst")) { if (m) m->dst = v; }
    else if (!strcmp(k, "mnt.data")) { if (m) m->data = v; }
    else if (!strcmp(k, "mnt.ro")) { if (m) m->ro = !strcmp(v, "1"); }
    else if (!strcmp(k, "mnt.nofollow")) { if (m) m->nofollow = !strcmp(v, "1"); }
    // unknown keys are ignored so that newer agents can talk to older helpers
  }
  c->args[c->nargs] = NULL;
  c->env[c->nenv] = NULL;
}

// ---------------------------------------------------------------- helpers

static void write_file(const char *path, const char *s) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open %s", path);
  size_t len = strlen(s);
  if (write(fd, s, len) != (ssize_t)len) die("write %s", path);
  close(fd);
}

static void mkdir_p(const char *path, mode_t mode) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      if (mkdir(tmp, mode) < 0 && errno != EEXIST) die("mkdir %s", tmp);
      *p = '/';
    }
  }
  if (mkdir(tmp, mode) < 0 && errno != EEXIST) die("mkdir %s", tmp);
}

// Opens `rel` inside the directory `rootfd` without following any symlink,
// creating missing components (directories, and the last one as a file when
// `leaf_file`). Returns an O_PATH fd usable as a mount target via /proc/self/fd.
static int open_in_root(int rootfd, const char *rel, int leaf_file) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", rel);
  int dirfd = dup(rootfd);
  if (dirfd < 0) die("dup");
  char *save = NULL;
  char *comp = strtok_r(buf, "/", &save);
  if (!comp) return dirfd;
  while (comp) {
    char *next = strtok_r(NULL, "/", &save);
    if (!strcmp(comp, "..") || !strcmp(comp, ".")) die("mount target %s: '.' and '..' are not allowed", rel);
    int last = next == NULL;
    int fd = openat(dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (last && leaf_file) {
        int f = openat(dirfd, comp, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0) die("create mount target %s", rel);
        close(f);
      } else if (mkdirat(dirfd, comp, 0755) < 0 && errno != EEXIST) {
        die("create mount target %s", rel);
      }
      fd = openat(dirfd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) die("open mount target %s", rel);
    struct stat st;
    if (fstat(fd, &st) < 0) die("stat %s", rel);
    if (S_ISLNK(st.st_mode)) {
      errno = 0;
      die("mount target %s goes through a symlink in the image", rel);
    }
    if (!last && !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      die("mount target %s", rel);
    }
    close(dirfd);
    dirfd = fd;
    comp = next;
  }
  return dirfd;
}

static void fdpath(char *out, size_t len, int fd) { snprintf(out, len, "/proc/self/fd/%d", fd); }

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) < 0) die("mount %s on %s (%s)", src ? src : "none", dst, type ? type : "bind");
}

// ---------------------------------------------------------------- user

// Resolves "user[:group]" (names or numbers) against the container's
// /etc/passwd and /etc/group, read by hand: glibc's NSS could load modules
// from the container's filesystem into this privileged process.
struct ids { uid_t uid; gid_t gid; gid_t groups[64]; int ngroups; };

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

// The container's /etc/passwd or /etc/group, opened inside its root (we run
// after pivot_root; RESOLVE_IN_ROOT keeps an absolute symlink in the image
// inside it too, and no magic link of /proc leads out), only if it is a
// regular file (a FIFO would block the start) of a sane size. NULL: none.
#define ID_FILE_MAX (4 << 20)
static FILE *open_id_file(const char *path) {
  struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) { close(fd); errno = 0; die("%s in the image is not a regular file", path); }
  if (st.st_size > ID_FILE_MAX) { close(fd); errno = 0; die("%s in the image is larger than %d MiB", path, ID_FILE_MAX >> 20); }
  FILE *f = fdopen(fd, "re");
  if (!f) close(fd);
  return f;
}

static void resolve_user(const char *spec, struct ids *out) {
  out->uid = 0;
  out->gid = 0;
  out->ngroups = 0;
  if (!spec || !*spec) spec = "0";
  char u[256], g[256] = "";
  snprintf(u, sizeof u, "%s", spec);
  char *colon = strchr(u, ':');
  if (colon) {
    *colon = 0;
    snprintf(g, sizeof g, "%s", colon + 1);
  }
  const char *uname = NULL;
  int found = 0;
  char line[1024];
  FILE *f = open_id_file("/etc/passwd");
  if (f) {
    while (fgets(line, sizeof line, f)) {
      char *fields[7] = {0};
      char *p = line;
      for (int i = 0; i < 7 && p; i++) {
        fields[i] = p;
        p = strchr(p, ':');
        if (p) *p++ = 0;
      }
      if (!fields[3]) continue;
      int match = all_digits(u) ? (uid_t)atol(u) == (uid_t)atol(fields[2]) : !strcmp(u, fields[0]);
      if (match) {
        out->uid = (uid_t)atol(fields[2]);
        out->gid = (gid_t)atol(fields[3]);
        static char namebuf[256];
        snprintf(namebuf, sizeof namebuf, "%s", fields[0]);
        uname = namebuf;
        found = 1;
        break;
      }
    }
    fclose(f);
  }
  if (!found) {
    if (!all_digits(u)) { errno = 0; die("unable to find user %s: no matching entries in passwd file", u); }
    out->uid = (uid_t)atol(u);
    out->gid = 0; // as Docker: a numeric uid without passwd entry gets gid 0
  }
  int gfound = !*g;
  if (*g && all_digits(g)) {
    out->gid = (gid_t)atol(g);
    gfound = 1;
  }
  f = open_id_file("/etc/group");
  if (f) {
    while (fgets(line, sizeof line, f)) {
      line[strcspn(line, "\n")] = 0;
      char *fields[4] = {0};
      char *p = line;
      for (int i = 0; i < 4 && p; i++) {
        fields[i] = p;
        p = strchr(p, ':');
        if (p) *p++ = 0;
      }
      if (!fields[2]) continue;
      gid_t gid = (gid_t)atol(fields[2]);
      if (*g && !gfound && !strcmp(g, fields[0])) {
        out->gid = gid;
        gfound = 1;
      }
      // supplementary groups listing the user by name
      if (uname && fields[3] && !*g) {
        char *save = NULL;
        for (char *m = strtok_r(fields[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
          if (!strcmp(m, uname) && out->ngroups < 64) out->groups[out->ngroups++] = gid;
      }
    }
    fclose(f);
  }
  if (!gfound) { errno = 0; die("unable to find group %s: no matching entries in group file", g); }
}

// ---------------------------------------------------------------- process setup

static int g_last_cap = 40;

static void read_last_cap(void) {
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char b[16] = {0};
  if (read(fd, b, sizeof b - 1) > 0) g_last_cap = atoi(b);
  close(fd);
}

static int kernel_at_least(int major, int minor) {
  struct utsname u;
  if (uname(&u) < 0) return 0;
  int ma = 0, mi = 0;
  if (sscanf(u.release, "%d.%d", &ma, &mi) < 2) return 0;
  return ma > major || (ma == major && mi >= minor);
}

// Adds an ALLOW rule for each space-separated name this architecture has.
static void allow_names(scmp_filter_ctx ctx, const char *names) {
  const char *p = names;
  while (*p) {
    while (*p == ' ') p++;
    const char *e = p;
    while (*e && *e != ' ') e++;
    char name[64];
    size_t n = (size_t)(e - p);
    if (n > 0 && n < sizeof name) {
      memcpy(name, p, n);
      name[n] = 0;
      // negative: unknown to libseccomp, or a pseudo-number of another architecture's syscall
      int nr = seccomp_syscall_resolve_name(name);
      if (nr >= 0 && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0) die("seccomp rule %s", name);
    }
    p = e;
  }
}

static int has_cap(uint64_t caps, int cap) { return cap >= 0 && cap < 64 && (caps >> cap) & 1; }

// The allowlist of seccomp-allow.h for a process with the capability set
// `caps` (bounding = permitted = effective), compiled to BPF into `prog`.
static void compile_seccomp(uint64_t caps, struct sock_fprog *prog) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) die("seccomp_init");
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
  // a binary tree over syscall numbers instead of a linear list: every
  // syscall of the container runs through the filter
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
#endif
  for (int i = 0; allow_always[i]; i++) allow_names(ctx, allow_always[i]);
  if (kernel_at_least(4, 8)) allow_names(ctx, allow_ptrace_4_8);
  for (size_t i = 0; i < sizeof allow_with_cap / sizeof allow_with_cap[0]; i++)
    if (has_cap(caps, allow_with_cap[i].cap)) allow_names(ctx, allow_with_cap[i].names);
  for (size_t i = 0; i < sizeof allow_personality / sizeof allow_personality[0]; i++)
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, allow_personality[i])) < 0)
      die("seccomp rule personality");
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_LT, SOCKET_AF_ALG)) < 0 ||
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, SOCKET_AF_ALG + 1)) < 0 ||
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GT, SOCKET_AF_VSOCK)) < 0)
    die("seccomp rule socket");
  if (!has_cap(caps, CAP_SYS_ADMIN)) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0)) < 0)
      die("seccomp rule clone");
    int nr = seccomp_syscall_resolve_name("clone3");
    if (nr >= 0 && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0) < 0) die("seccomp rule clone3");
  }
  int fd = memfd_create("seccomp", MFD_CLOEXEC);
  if (fd < 0) die("memfd_create");
  if (seccomp_export_bpf(ctx, fd) < 0) die("seccomp export");
  seccomp_release(ctx);
  off_t len = lseek(fd, 0, SEEK_END);
  if (len <= 0 || len % (off_t)sizeof(struct sock_filter) || len / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) { errno = 0; die("seccomp filter of %lld bytes", (long long)len); }
  prog->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
  prog->filter = malloc((size_t)len);
  if (!prog->filter) die("out of memory");
  if (pread(fd, prog->filter, (size_t)len, 0) != len) die("read seccomp filter");
  close(fd);
}

// libseccomp takes ~5 ms to compile the ~380 rules (it copies its rule
// database for each rule added), ten times what the rest of a start costs
// in the helper; so the compiled program is kept, per capability set and per
// build of this helper, in `cachedir` (the agent's <stateDir>/seccomp, 0700)
// and loaded from there in microseconds. Without a cache dir, compiled each time.
static void seccomp_program(const char *cachedir, uint64_t caps, struct sock_fprog *prog) {
  char name[256] = "";
  struct stat self;
  if (cachedir && *cachedir && stat("/proc/self/exe", &self) == 0)
    snprintf(name, sizeof name, "%s/%016llx-%d-%llx-%llx-%lld.bpf", cachedir, (unsigned long long)caps, kernel_at_least(4, 8),
             (unsigned long long)self.st_dev, (unsigned long long)self.st_ino, (long long)self.st_mtime);
  if (*name) {
    int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == 0 && !(st.st_mode & 022) && st.st_size > 0 &&
        st.st_size % (off_t)sizeof(struct sock_filter) == 0 && st.st_size / (off_t)sizeof(struct sock_filter) <= BPF_MAXINSNS) {
      prog->filter = malloc((size_t)st.st_size);
      if (prog->filter && pread(fd, prog->filter, (size_t)st.st_size, 0) == st.st_size) {
        prog->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
        close(fd);
        return;
      }
      free(prog->filter);
    }
    if (fd >= 0) close(fd);
  }
  compile_seccomp(caps, prog);
  if (!*name) return;
  // written whole to a temporary name, then renamed: a reader sees all or nothing
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", name, getpid());
  mkdir(cachedir, 0700);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return; // no cache, the filter still applies
  size_t len = (size_t)prog->len * sizeof(struct sock_filter);
  if (write(fd, prog->filter, len) == (ssize_t)len && close(fd) == 0) {
    if (rename(tmp, name) < 0) unlink(tmp);
  } else {
    unlink(tmp);
  }
}

// The capability set `caps` of a config (as apply_identity sets it).
static uint64_t config_caps(const struct config *c) {
  static const int defaults[] = {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}; // Docker's default set
  const int *caps = c->caps_given ? c->caps : defaults;
  int n = c->caps_given ? c->ncaps : (int)(sizeof defaults / sizeof defaults[0]);
  uint64_t set = 0;
  for (int i = 0; i < n; i++)
    if (caps[i] >= 0 && caps[i] < 64) set |= 1ULL << caps[i];
  return set;
}

// Loads the program (needs no_new_privs, set by apply_identity).
static void load_seccomp(const struct sock_fprog *prog) {
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0) die("load the seccomp filter");
}

static void apply_rlimits(const struct config *c) {
  for (int i = 0; i < c->nrlimits; i++) {
    struct rlimit rl = {c->rlimits[i].soft, c->rlimits[i].hard};
    if (setrlimit(c->rlimits[i].res, &rl) == 0) continue;
    // raising a hard limit needs CAP_SYS_RESOURCE in the initial namespace;
    // where we lack it, keep the current hard limit and clamp the soft one
    struct rlimit cur;
    if (errno != EPERM || getrlimit(c->rlimits[i].res, &cur) < 0) die("setrlimit %d", c->rlimits[i].res);
    rl.rlim_max = rl.rlim_max < cur.rlim_max ? rl.rlim_max : cur.rlim_max;
    rl.rlim_cur = rl.rlim_cur < rl.rlim_max ? rl.rlim_cur : rl.rlim_max;
    if (setrlimit(c->rlimits[i].res, &rl) < 0) die("setrlimit %d", c->rlimits[i].res);
  }
}

// Capabilities: bounding = permitted = effective = the config's set;
// inheritable and ambient empty, as Docker since 20.10.14 (an inheritable set
// would let a program with inheritable file capabilities gain them on exec).
static void apply_identity(const struct config *c, const struct ids *ids) {
  uint64_t set = config_caps(c);
  // --privileged: every capability this helper has (as Docker's: the daemon's), not more
  if (c->privileged)
    for (int cap = 0; cap <= g_last_cap && cap < 64; cap++)
      if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) set &= ~(1ULL << cap);
  for (int cap = 0; cap <= g_last_cap; cap++)
    if (!(set & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      die("drop capability %d", cap);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) die("keepcaps");
  if (setgroups((size_t)ids->ngroups, ids->groups) < 0) die("setgroups");
  if (setresgid(ids->gid, ids->gid, ids->gid) < 0) die("setgid %u", ids->gid);
  if (setresuid(ids->uid, ids->uid, ids->uid) < 0) die("setuid %u", ids->uid);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = (uint32_t)set;
  data[1].effective = data[1].permitted = (uint32_t)(set >> 32);
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) die("clear ambient caps");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
}

static const char *env_get(const struct config *c, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < c->nenv; i++)
    if (!strncmp(c->env[i], name, n) && c->env[i][n] == '=') return c->env[i] + n + 1;
  return NULL;
}

static void exec_process(const struct config *c) {
  if (c->nargs == 0) { errno = 0; die("no command given"); }
  const char *file = c->args[0];
  char *const *argv = (char *const *)c->args;
  char *const *envp = (char *const *)c->env;
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    die("exec %s", file);
  }
  const char *path = env_get(c, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char pbuf[4096];
  snprintf(pbuf, sizeof pbuf, "%s", path);
  int last_err = ENOENT;
  char *save = NULL;
  for (char *dir = strtok_r(pbuf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", *dir ? dir : ".", file);
    execve(full, argv, envp);
    if (errno != ENOENT && errno != ENOTDIR) last_err = errno;
  }
  errno = last_err;
  die("exec %s: not found in PATH", file);
}

static void reset_signals(void) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    signal(s, SIG_DFL);
  }
}

// ---------------------------------------------------------------- container init

static const char *masked_paths[] = {"proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
                                     "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
                                     "sys/firmware", "sys/devices/virtual/powercap", NULL};
static const char *readonly_paths[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger", NULL};
static const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("get lo flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("set lo up");
  close(s);
}

// mountinfo escapes blanks, tabs, newlines and backslashes as \ooo.
static void unescape_octal(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = 0;
}

// Kernels before 5.12 (no mount_setattr): remount each mount at or under the
// bind, found in /proc/self/mountinfo, keeping its own nosuid/noexec/...
static void bind_attrs_walk(const char *rel, const char *dst, int ro) {
  char base[4096];
  if (!realpath(rel, base)) die("resolve %s", dst);
  size_t blen = strlen(base);
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) die("open /proc/self/mountinfo");
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    // id parent major:minor root mountpoint ...
    char *save = NULL, *point = NULL;
    char *tok = strtok_r(line, " ", &save);
    for (int i = 0; tok && i < 4; i++) {
      tok = strtok_r(NULL, " ", &save);
      if (i == 3) point = tok;
    }
    if (!point) continue;
    unescape_octal(point);
    if (strncmp(point, base, blen) != 0 || (point[blen] != 0 && point[blen] != '/')) continue;
    struct statvfs sv;
    if (statvfs(point, &sv) < 0) continue; // gone, or hidden by a later mount
    unsigned long fl = MS_BIND | MS_REMOUNT | MS_NODEV | (ro ? MS_RDONLY : 0);
    if (sv.f_flag & ST_NOSUID) fl |= MS_NOSUID;
    if (sv.f_flag & ST_NOEXEC) fl |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) fl |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) fl |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) fl |= MS_RELATIME;
    if (!ro && (sv.f_flag & ST_RDONLY)) fl |= MS_RDONLY;
    if (mount(NULL, point, NULL, fl, NULL) < 0) die("remount %s", point);
  }
  free(line);
  fclose(f);
}

// nodev (always) and read-only (when asked) on a bind mount and, as it was
// made with MS_REC, on every mount under it: a ro bind of a directory with a
// submount must not leave the submount writable (a plain MS_REMOUNT changes
// the top mount only). One mount_setattr(AT_RECURSIVE) call on kernels >= 5.12.
static void bind_attrs_recursive(const char *rel, const char *dst, int ro) {
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0);
  if (syscall(SYS_mount_setattr, AT_FDCWD, rel, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &attr, sizeof attr) == 0) return;
  if (errno != ENOSYS) die("set %s on %s and its submounts", ro ? "nodev,ro" : "nodev", dst);
  bind_attrs_walk(rel, dst, ro);
}

// --sysctl: written through the container's own /proc (mounted just before,
// relative to the new root), so net.* lands in its network namespace and
// kernel.shm*/msg*/sem, fs.mqueue.* in its IPC namespace. The agent's
// manager refused every other name; a name is dots only, no "..".
static void apply_sysctls(const struct config *c, int root) {
  for (int i = 0; i < c->nsysctls; i++) {
    const char *eq = strchr(c->sysctls[i], '=');
    if (!eq || eq == c->sysctls[i]) { errno = 0; die("config: bad sysctl %s", c->sysctls[i]); }
    char rel[512];
    int n = snprintf(rel, sizeof rel, "proc/sys/%.*s", (int)(eq - c->sysctls[i]), c->sysctls[i]);
    if (n < 0 || (size_t)n >= sizeof rel) { errno = 0; die("config: sysctl name too long"); }
    for (char *p = rel + 9; *p; p++) {
      if (*p == '.') *p = '/';
      else if (*p == '/') { errno = 0; die("config: bad sysctl %s", c->sysctls[i]); }
    }
    if (strstr(rel, "//")) { errno = 0; die("config: bad sysctl %s", c->sysctls[i]); }
    int fd = openat(root, rel, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) die("sysctl %.*s", (int)(eq - c->sysctls[i]), c->sysctls[i]);
    size_t len = strlen(eq + 1);
    if (write(fd, eq + 1, len) != (ssize_t)len) die("sysctl %s", c->sysctls[i]);
    close(fd);
  }
}

static void setup_rootfs(const struct config *c) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");
  if (!c->merged || !c->upper || !c->work || c->nlowers == 0) { errno = 0; die("config: rootfs incomplete"); }
  // overlay options; lower dirs may be relative to lowerbase to fit in a page
  size_t cap = 256 + strlen(c->upper) + strlen(c->work);
  for (int i = 0; i < c->nlowers; i++) cap += strlen(c->lowers[i]) + 1;
  char *opts = malloc(cap);
  if (!opts) die("out of memory");
  char *p = opts;
  p += sprintf(p, "lowerdir=");
  for (int i = 0; i < c->nlowers; i++) p += sprintf(p, "%s%s", i ? ":" : "", c->lowers[i]);
  sprintf(p, ",upperdir=%s,workdir=%s", c->upper, c->work);
  if (c->lowerbase && chdir(c->lowerbase) < 0) die("chdir %s", c->lowerbase);
  do_mount("overlay", c->merged, "overlay", MS_NODEV, opts);
  free(opts);
  if (chdir(c->merged) < 0) die("chdir %s", c->merged);
  int root = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open rootfs");
  char t[64];

  // /proc
  int fd = open_in_root(root, "proc", 0);
  fdpath(t, sizeof t, fd);
  do_mount("proc", t, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  close(fd);
  apply_sysctls(c, root);
  // /sys, read-only
  fd = open_in_root(root, "sys", 0);
  fdpath(t, sizeof t, fd);
  do_mount("sysfs", t, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (c->privileged ? 0 : MS_RDONLY), NULL);
  close(fd);
  // /dev: a tmpfs without device nodes of its own (nodev), the few devices
  // bind-mounted from the host, so that a container cannot use a node it
  // makes itself even where no devices cgroup restricts it (cgroup v2).
  fd = open_in_root(root, "dev", 0);
  fdpath(t, sizeof t, fd);
  do_mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k");
  close(fd);
  for (int i = 0; devices[i]; i++) {
    char host[64], rel[64];
    snprintf(host, sizeof host, "/dev/%s", devices[i]);
    snprintf(rel, sizeof rel, "dev/%s", devices[i]);
    if (access(host, F_OK) < 0) continue;
    fd = open_in_root(root, rel, 1);
    fdpath(t, sizeof t, fd);
    do_mount(host, t, NULL, MS_BIND, NULL);
    close(fd);
  }
  fd = open_in_root(root, "dev/pts", 0);
  fdpath(t, sizeof t, fd);
  do_mount("devpts", t, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  close(fd);
  fd = open_in_root(root, "dev/shm", 0);
  fdpath(t, sizeof t, fd);
  do_mount("shm", t, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  close(fd);
  fd = open_in_root(root, "dev/mqueue", 0);
  fdpath(t, sizeof t, fd);
  do_mount("mqueue", t, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  close(fd);
  if (symlink("pts/ptmx", "dev/ptmx") < 0 && errno != EEXIST) die("symlink ptmx");
  if (symlink("/proc/self/fd", "dev/fd") < 0 && errno != EEXIST) die("symlink fd");
  if (symlink("/proc/self/fd/0", "dev/stdin") < 0 && errno != EEXIST) die("symlink stdin");
  if (symlink("/proc/self/fd/1", "dev/stdout") < 0 && errno != EEXIST) die("symlink stdout");
  if (symlink("/proc/self/fd/2", "dev/stderr") < 0 && errno != EEXIST) die("symlink stderr");

  // volumes, binds, tmpfs (and /etc/resolv.conf, /etc/hosts from the agent)
  for (int i = 0; i < c->nmounts; i++) {
    const struct mountspec *m = &c->mounts[i];
    if (!m->dst) { errno = 0; die("config: mount without target"); }
    if (!strcmp(m->type, "bind")) {
      struct stat st;
      if (!m->src) { errno = 0; die("bind source (none)"); }
      // The source as an O_PATH fd, mounted through /proc/self/fd: what was
      // checked is what is mounted. An admitted bind's path must hold no
      // symlink now (the agent resolved it before admitting it).
      // (Not O_NOFOLLOW: with O_PATH it would hand back the symlink itself;
      // RESOLVE_NO_SYMLINKS refuses a trailing one with ELOOP.)
      struct open_how sh = {.flags = O_PATH | O_CLOEXEC, .resolve = m->nofollow ? (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) : 0};
      int sfd = (int)syscall(SYS_openat2, AT_FDCWD, m->src, &sh, sizeof sh);
      if (sfd < 0 && errno == ENOSYS) sfd = open(m->src, O_PATH | O_CLOEXEC);
      if (sfd < 0) die(errno == ELOOP ? "bind source %s: a symlink on its path (changed after the agent admitted it)" : "bind source %s", m->src);
      if (fstat(sfd, &st) < 0) die("bind source %s", m->src);
      if (m->nofollow && S_ISLNK(st.st_mode)) { errno = ELOOP; die("bind source %s: a symlink on its path (changed after the agent admitted it)", m->src); }
      char s[64];
      fdpath(s, sizeof s, sfd);
      fd = open_in_root(root, m->dst, !S_ISDIR(st.st_mode));
      fdpath(t, sizeof t, fd);
      do_mount(s, t, NULL, MS_BIND | MS_REC, NULL);
      close(fd);
      close(sfd);
      // the O_PATH fd still names the covered inode: change the new mount
      // through the path (relative to the new root, just checked to have no
      // symlink), with every mount under it
      const char *rel = m->dst;
      while (*rel == '/') rel++;
      bind_attrs_recursive(rel, m->dst, m->ro);
    } else if (!strcmp(m->type, "dev")) {
      // --device: a host device node bound over a file in the container's
      // /dev (its own nodev tmpfs does not hold nodes). The source is opened
      // with no symlink on its path and must be a device.
      struct stat st;
      struct open_how dh = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
      int sfd = m->src ? (int)syscall(SYS_openat2, AT_FDCWD, m->src, &dh, sizeof dh) : -1;
      if (sfd < 0 && errno == ENOSYS) sfd = open(m->src, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0) die("device %s", m->src ? m->src : "(none)");
      if (fstat(sfd, &st) < 0) die("device %s", m->src);
      if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) { errno = 0; die("device %s is not a character or block device", m->src); }
      char s[64];
      fdpath(s, sizeof s, sfd);
      fd = open_in_root(root, m->dst, 1);
      fdpath(t, sizeof t, fd);
      do_mount(s, t, NULL, MS_BIND, NULL);
      close(fd);
      close(sfd);
    } else if (!strcmp(m->type, "tmpfs")) {
      fd = open_in_root(root, m->dst, 0);
      fdpath(t, sizeof t, fd);
      do_mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV | (m->ro ? MS_RDONLY : 0), m->data && *m->data ? m->data : NULL);
      close(fd);
    } else {
      errno = 0;
      die("config: unknown mount type %s", m->type);
    }
  }

  // masked and read-only paths, as runc's defaults (none for --privileged, as Docker)
  for (int i = 0; !c->privileged && masked_paths[i]; i++) {
    struct stat st;
    if (lstat(masked_paths[i], &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) do_mount("tmpfs", masked_paths[i], "tmpfs", MS_RDONLY, NULL);
    else do_mount("/dev/null", masked_paths[i], NULL, MS_BIND, NULL);
  }
  for (int i = 0; !c->privileged && readonly_paths[i]; i++) {
    struct stat st;
    if (lstat(readonly_paths[i], &st) < 0) continue;
    do_mount(readonly_paths[i], readonly_paths[i], NULL, MS_BIND | MS_REC, NULL);
    if (mount(NULL, readonly_paths[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      die("remount %s read-only", readonly_paths[i]);
  }
  close(root);

  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
  if (umount2(".", MNT_DETACH) < 0) die("detach old root");
  if (chdir("/") < 0) die("chdir /");
  if (c->readonly && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV, NULL) < 0)
    die("remount / read-only");
}

static void join_cgroups(const struct config *c) {
  char path[4096];
  for (int i = 0; i < c->ncgroups; i++) {
    snprintf(path, sizeof path, "%s/cgroup.procs", c->cgroups[i]);
    write_file(path, "0");
  }
}

// --tty: a terminal from the container's devpts (mounted by setup_rootfs,
// so the process sees /dev/pts/0 of its own) becomes its stdin, stdout,
// stderr and controlling terminal; the master goes to the monitor over
// `sock` (SCM_RIGHTS), which logs what the terminal prints. Called after
// setsid(), owned by the container's user.
static void setup_tty(int sock, const struct ids *ids) {
  int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("open /dev/pts/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die("unlock the terminal");
  int n = -1;
  if (ioctl(master, TIOCGPTN, &n) < 0) die("terminal number");
  char name[64];
  snprintf(name, sizeof name, "/dev/pts/%d", n);
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die("open %s", name);
  if (fchown(slave, ids->uid, ids->gid) < 0) die("chown %s", name);
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  ioctl(master, TIOCSWINSZ, &ws);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) die("set the controlling terminal");
  if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) die("dup2 terminal");
  close(slave);
  char byte = 't';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &master, sizeof(int));
  if (sendmsg(sock, &msg, 0) < 0) die("send the terminal to the monitor");
  close(master);
  close(sock);
}

// --init: this process stays as the container's PID 1 (as tini or
// docker-init): it forwards every signal it can catch to the process,
// reaps every child (orphans are re-parented to it) and exits as the
// process did (128+N when a signal N ended it).
static volatile pid_t g_init_child = -1;
static void init_forward(int sig) {
  if (g_init_child > 0) kill(g_init_child, sig);
}
static void run_init(const struct config *c, int errfd) {
  pid_t child = fork();
  if (child < 0) die("fork the process");
  if (child == 0) {
    exec_process(c);
  }
  // The monitor learns the exec happened from the error pipe's EOF: only the child may hold it now.
  close(errfd);
  g_errfd = -1;
  g_init_child = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = init_forward;
  sigemptyset(&sa.sa_mask);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE) continue;
    sigaction(s, &sa, NULL);
  }
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0) {
      if (errno == EINTR) continue;
      _exit(255); // ECHILD: cannot happen while the child lives
    }
    if (p == child) _exit(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
  }
}

static void container_main(const struct config *c, const struct sock_fprog *prog, int errfd, int outfd, int errout, int stdinfd, int ptysock) {
  g_errfd = errfd;
  reset_signals();
  if (dup2(outfd, 1) < 0 || dup2(errout, 2) < 0) die("dup2");
  if (stdinfd >= 0) {
    // stdin_open: a pipe whose write end the monitor keeps (nobody writes; the process never sees EOF)
    if (dup2(stdinfd, 0) < 0) die("stdin");
  } else {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0) die("stdin");
  }
  // the terminal's socket to the monitor right after the error pipe, kept through the close below
  int keep = errfd;
  if (ptysock >= 0) {
    if (ptysock != errfd + 1 && dup2(ptysock, errfd + 1) < 0) die("dup2");
    ptysock = errfd + 1;
    if (fcntl(ptysock, F_SETFD, FD_CLOEXEC) < 0) die("fcntl");
    keep = ptysock;
  }
  // close everything but 0-2, the error pipe and the terminal's socket (close-on-exec)
#ifdef SYS_close_range
  if (errfd > 3) syscall(SYS_close_range, 3U, (unsigned)errfd - 1, 0U);
  if (syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) < 0)
#endif
    for (int fd = 3; fd < 1024; fd++)
      if (fd != errfd && fd != ptysock) close(fd);
  join_cgroups(c);
  if (unshare(CLONE_NEWCGROUP) < 0) die("unshare cgroup namespace");
  if (c->netns) {
    int nfd = open(c->netns, O_RDONLY | O_CLOEXEC);
    if (nfd < 0) die("open netns %s", c->netns);
    if (setns(nfd, CLONE_NEWNET) < 0) die("setns %s", c->netns);
    close(nfd);
  } else {
    loopback_up();
  }
  setup_rootfs(c);
  if (c->hostname && *c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) die("sethostname");
  struct ids ids;
  resolve_user(c->user, &ids);
  const char *cwd = c->cwd && *c->cwd ? c->cwd : "/";
  mkdir_p(cwd, 0755);
  apply_rlimits(c);
  if (setsid() < 0) die("setsid");
  if (ptysock >= 0) setup_tty(ptysock, &ids);
  umask(022);
  apply_identity(c, &ids);
  if (chdir(cwd) < 0) die("chdir %s", cwd);
  if (c->seccomp) load_seccomp(prog);
  if (c->init) run_init(c, errfd);
  exec_process(c);
}

// ---------------------------------------------------------------- logs

struct logstate {
  const char *path;
  int fd;
  long long size, max;
  int files;
};

static void log_open(struct logstate *l) {
  l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (l->fd < 0) return;
  struct stat st;
  l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
}

static void log_rotate(struct logstate *l) {
  close(l->fd);
  char from[4096], to[4096];
  for (int k = l->files - 1; k >= 1; k--) {
    if (k == 1) snprintf(from, sizeof from, "%s", l->path);
    else snprintf(from, sizeof from, "%s.%d", l->path, k - 1);
    snprintf(to, sizeof to, "%s.%d", l->path, k);
    rename(from, to);
  }
  if (l->files <= 1) unlink(l->path);
  log_open(l);
}

static void log_line(struct logstate *l, const char *stream, const char *data, size_t len) {
  if (l->fd < 0) return;
  char rec[65536 + 256];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(rec, 64, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)sprintf(rec + n, ".%03ldZ\",\"stream\":\"%s\",\"log\":\"", ts.tv_nsec / 1000000, stream);
  for (size_t i = 0; i < len && n < sizeof rec - 16; i++) {
    unsigned char ch = (unsigned char)data[i];
    switch (ch) {
      case '"': rec[n++] = '\\'; rec[n++] = '"'; break;
      case '\\': rec[n++] = '\\'; rec[n++] = '\\'; break;
      case '\n': rec[n++] = '\\'; rec[n++] = 'n'; break;
      case '\r': rec[n++] = '\\'; rec[n++] = 'r'; break;
      case '\t': rec[n++] = '\\'; rec[n++] = 't'; break;
      default:
        if (ch < 0x20) n += (size_t)sprintf(rec + n, "\\u%04x", ch);
        else rec[n++] = (char)ch;
    }
  }
  rec[n++] = '"';
  rec[n++] = '}';
  rec[n++] = '\n';
  if (l->max > 0 && l->size > 0 && l->size + (long long)n > l->max) log_rotate(l);
  if (l->fd < 0) return;
  if (write(l->fd, rec, n) > 0) l->size += (long long)n;
}

#define LINE_MAX_BYTES 16384

struct stream {
  int fd;
  int crlf; // a terminal's lines end in \r\n: the \r is not logged
  const char *name;
  char buf[LINE_MAX_BYTES];
  size_t len;
};

static void stream_read(struct stream *s, struct logstate *l) {
  ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
  if (r <= 0) {
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (s->len) log_line(l, s->name, s->buf, s->len);
    s->len = 0;
    close(s->fd);
    s->fd = -1;
    return;
  }
  s->len += (size_t)r;
  size_t start = 0;
  for (size_t i = 0; i < s->len; i++) {
    if (s->buf[i] == '\n') {
      size_t n = i - start;
      if (s->crlf && n > 0 && s->buf[start + n - 1] == '\r') n--;
      log_line(l, s->name, s->buf + start, n);
      start = i + 1;
    }
  }
  if (start == 0 && s->len == sizeof s->buf) {  // a line longer than the buffer: split it
    log_line(l, s->name, s->buf, s->len);
    start = s->len;
  }
  memmove(s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

// ---------------------------------------------------------------- run

static void write_exitfile(const char *path, int status) {
  if (!path) return;
  char tmp[4096], body[64];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int len;
  if (WIFSIGNALED(status)) len = snprintf(body, sizeof body, "signaled %d\n", WTERMSIG(status));
  else len = snprintf(body, sizeof body, "exited %d\n", WEXITSTATUS(status));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, body, (size_t)len) < 0) {}
  fsync(fd);
  close(fd);
  rename(tmp, path);
}

static int cmd_run(void) {
  g_errfd = CONFIG_FD;
  size_t len;
  char *buf = read_all(CONFIG_FD, &len);
  const char **kv;
  int n = split(buf, len, &kv);
  static struct config c;
  parse_config(&c, kv, n);
  read_last_cap();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);

  // compiled (or read from the cache) here, before the container's root hides the cache
  struct sock_fprog prog = {0, NULL};
  if (c.seccomp) seccomp_program(c.seccompcache, config_caps(&c), &prog);

  int errp[2], outp[2], errout[2];
  if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errout, O_CLOEXEC) < 0) die("pipe");
  // --tty: the child sends the terminal's master here; stdin_open: a pipe we hold the write end of
  int ptys[2] = {-1, -1}, inp[2] = {-1, -1};
  if (c.tty && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ptys) < 0) die("socketpair");
  if (c.openstdin && !c.tty && pipe2(inp, O_CLOEXEC) < 0) die("pipe");
  unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (!c.netns) flags |= CLONE_NEWNET;
  // raw clone without a stack behaves like fork: the child runs on a copy of ours
  pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
  if (pid < 0) die("clone");
  if (pid == 0) {
    close(errp[0]);
    close(outp[0]);
    close(errout[0]);
    if (ptys[0] >= 0) close(ptys[0]);
    if (inp[1] >= 0) close(inp[1]);
    // the pipe ends become fds 1 and 2 without close-on-exec
    int o = fcntl(outp[1], F_DUPFD_CLOEXEC, 10), e = fcntl(errout[1], F_DUPFD_CLOEXEC, 10);
    container_main(&c, &prog, errp[1], o, e, inp[0], ptys[1]);
  }
  close(errp[1]);
  close(outp[1]);
  close(errout[1]);
  if (ptys[1] >= 0) close(ptys[1]);
  if (inp[0] >= 0) close(inp[0]);
  // the child reports a setup error on errp; EOF means it exec'd
  char msg[1200];
  size_t mlen = 0;
  for (;;) {
    ssize_t r = read(errp[0], msg + mlen, sizeof msg - 1 - mlen);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    mlen += (size_t)r;
    if (mlen >= sizeof msg - 1) break;
  }
  close(errp[0]);
  if (mlen > 0) {
    int st;
    waitpid(pid, &st, 0);
    msg[mlen] = 0;
    if (write(CONFIG_FD, msg, mlen) < 0) {}
    _exit(1);
  }
  // the terminal's master, sent before the exec (the EOF above)
  int master = -1;
  if (ptys[0] >= 0) {
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    if (recvmsg(ptys[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) > 0) {
      struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
      if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) memcpy(&master, CMSG_DATA(cm), sizeof(int));
    }
    close(ptys[0]);
    if (master < 0) {
      kill(pid, SIGKILL);
      int st;
      waitpid(pid, &st, 0);
      const char *m = "error the container's terminal did not reach the monitor\n";
      if (write(CONFIG_FD, m, strlen(m)) < 0) {}
      _exit(1);
    }
  }
  char ok[64];
  int oklen = snprintf(ok, sizeof ok, "ok %d %d\n", pid, getpid());
  if (write(CONFIG_FD, ok, (size_t)oklen) < 0) {}
  close(CONFIG_FD);
  g_errfd = -1;
  int nul = open("/dev/null", O_RDWR);
  if (nul >= 0) {
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(nul, 2);
    if (nul > 2) close(nul);
  }

  struct logstate l = {c.log ? c.log : "/dev/null", -1, 0, c.logmax, c.logfiles < 1 ? 1 : c.logfiles};
  log_open(&l);
  static struct stream so, se, tt;
  tt.fd = master;
  tt.name = "stdout";
  so.fd = outp[0];
  so.name = "stdout";
  se.fd = errout[0];
  se.name = "stderr";
  tt.crlf = 1;
  while (so.fd >= 0 || se.fd >= 0 || tt.fd >= 0) {
    struct pollfd p[3];
    int np = 0;
    struct stream *map[3];
    if (tt.fd >= 0) { p[np].fd = tt.fd; p[np].events = POLLIN; map[np++] = &tt; }
    if (so.fd >= 0) { p[np].fd = so.fd; p[np].events = POLLIN; map[np++] = &so; }
    if (se.fd >= 0) { p[np].fd = se.fd; p[np].events = POLLIN; map[np++] = &se; }
    int r = poll(p, (nfds_t)np, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < np; i++)
      if (p[i].revents) stream_read(map[i], &l);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (l.fd >= 0) close(l.fd);
  if (inp[1] >= 0) close(inp[1]);
  write_exitfile(c.exitfile, status);
  return 0;
}

// ---------------------------------------------------------------- exec

static pid_t g_exec_child = -1;
static void forward_signal(int sig) {
  if (g_exec_child > 0) kill(g_exec_child, sig);
}

static int write_all(int fd, const char *p, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= w;
  }
  return 0;
}

// exec with a terminal: our stdin → the pty master, the master → our stdout,
// until the terminal's last user closes it (read gives EIO). Stdin's EOF only
// stops reading it (as a terminal whose keyboard went quiet). Lines
// "rows cols" on `ctl` resize the terminal (the kernel sends SIGWINCH).
static void relay_pty(int master, int ctl) {
  char buf[16384];
  char line[64];
  size_t linelen = 0;
  int in_open = 1;
  for (;;) {
    // fd -1 entries are ignored by poll
    struct pollfd p[3] = {{.fd = master, .events = POLLIN}, {.fd = in_open ? 0 : -1, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
    int r = poll(p, 3, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (ctl >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(ctl, buf, sizeof buf);
      if (n <= 0 && !(n < 0 && errno == EINTR)) {
        close(ctl);
        ctl = -1;
      }
      for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
          if (linelen < sizeof line - 1) line[linelen++] = buf[i];
          continue;
        }
        line[linelen] = 0;
        linelen = 0;
        int rows = 0, cols = 0;
        if (sscanf(line, "%d %d", &rows, &cols) == 2 && rows > 0 && cols > 0 && rows < 65536 && cols < 65536) {
          struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
          ioctl(master, TIOCSWINSZ, &ws);
        }
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return; // EIO: the slave side is closed
      if (write_all(1, buf, n) < 0) return;
    }
    if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) in_open = 0;
      else if (write_all(master, buf, n) < 0) in_open = 0;
    }
  }
}

static int cmd_exec(void) {
  size_t len;
  char *buf = read_all(CONFIG_FD, &len);
  close(CONFIG_FD);
  const char **kv;
  int n = split(buf, len, &kv);
  static struct config c;
  parse_config(&c, kv, n);
  read_last_cap();
  if (c.pid <= 0) { errno = 0; die("exec: no container pid"); }
  if (c.ctlfd >= 0) fcntl(c.ctlfd, F_SETFD, FD_CLOEXEC); // never inherited by the process
  static const struct { const char *name; int type; } nss[] = {
      {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
      {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};
  int fds[6];
  char path[128];
  for (int i = 0; i < 6; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", c.pid, nss[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) die("open %s (is the container running?)", path);
  }
  snprintf(path, sizeof path, "/proc/%d/root", c.pid);
  int rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) die("open %s", path);
  // a terminal from the container's own devpts instance (mounted by `run`,
  // ptmxmode=0666), so the process sees /dev/pts/N of its container
  int master = -1, slave = -1;
  if (c.tty) {
    master = openat(rootfd, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die("open the container's /dev/pts/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die("unlock the pty");
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) die("open the pty's peer");
    struct winsize ws = {.ws_row = (unsigned short)(c.rows > 0 ? c.rows : 24), .ws_col = (unsigned short)(c.cols > 0 ? c.cols : 80)};
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) die("set the pty's size");
  }
  struct sock_fprog prog = {0, NULL};
  if (c.seccomp) seccomp_program(c.seccompcache, config_caps(&c), &prog);
  join_cgroups(&c);
  for (int i = 0; i < 6; i++) {
    if (setns(fds[i], nss[i].type) < 0) die("setns %s", nss[i].name);
    close(fds[i]);
  }
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    reset_signals();
    if (c.tty) {
      if (setsid() < 0) die("setsid");
      if (ioctl(slave, TIOCSCTTY, 0) < 0) die("take the pty as controlling terminal");
      // stderr last: setup errors keep reaching the caller until then
      if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) die("dup2 pty");
    }
    if (fchdir(rootfd) < 0 || chroot(".") < 0) die("chroot into container");
    close(rootfd);
    struct ids ids;
    resolve_user(c.user, &ids);
    const char *cwd = c.cwd && *c.cwd ? c.cwd : "/";
    apply_rlimits(&c);
    apply_identity(&c, &ids);
    if (chdir(cwd) < 0) die("chdir %s", cwd);
    if (c.seccomp) load_seccomp(&prog);
    exec_process(&c);
  }
  g_exec_child = pid;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++) sigaction(fwd[i], &sa, NULL);
  if (c.tty) {
    close(slave);
    signal(SIGPIPE, SIG_IGN);
    relay_pty(master, c.ctlfd);
    close(master);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// ---------------------------------------------------------------- fixup

// Layer entries Node cannot create. Every path is resolved by the kernel
// beneath the layer's root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
// | RESOLVE_NO_MAGICLINKS): no symlink, no "..", no absolute path can lead
// outside it, whatever the layer put on disk. Kernels before 5.6 (no openat2)
// get the same rule from a walk that opens each component with O_NOFOLLOW
// relative to the previous one. The agent has already checked the operations
// (image/tar.ts); the helper does not trust that.

static int open_beneath(int root, const char *rel, int flags) {
  if (!*rel) rel = ".";
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return (int)fd;
  // no openat2: component by component
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", rel) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int dirfd = dup(root);
  if (dirfd < 0) return -1;
  char *save = NULL;
  for (char *comp = strtok_r(buf, "/", &save); comp;) {
    char *next = strtok_r(NULL, "/", &save);
    if (!strcmp(comp, "..")) {
      close(dirfd);
      errno = EXDEV; // what openat2 says for a path leaving the root
      return -1;
    }
    int fd = openat(dirfd, comp, (next ? O_PATH | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    close(dirfd);
    if (fd < 0) {
      errno = saved;
      return -1;
    }
    dirfd = fd;
    comp = next;
  }
  return dirfd;
}

// Opens the parent directory of `rel` beneath `root`; sets *base to the last
// component, which must be a plain name.
static int open_parent(int root, const char *rel, char *scratch, size_t scratch_len, const char **base) {
  if (snprintf(scratch, scratch_len, "%s", rel) >= (int)scratch_len) {
    errno = ENAMETOOLONG;
    die("fixup %s", rel);
  }
  char *slash = strrchr(scratch, '/');
  const char *dir = "";
  if (slash) {
    *slash = 0;
    dir = scratch;
    *base = slash + 1;
  } else {
    *base = scratch;
  }
  if (!**base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
    errno = 0;
    die("fixup: %s does not name an entry", rel);
  }
  int d = open_beneath(root, dir, O_PATH | O_DIRECTORY);
  if (d < 0) die("fixup: cannot open the directory of %s beneath the layer root", rel);
  return d;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// The xattrs a layer may set; the same list as xattrAllowed in image/tar.ts.
static int xattr_allowed(const char *name) {
  if (!strncmp(name, "user.", 5)) return strncmp(name, "user.overlay.", 13) != 0;
  return !strcmp(name, "security.capability") || !strcmp(name, "system.posix_acl_access") ||
         !strcmp(name, "system.posix_acl_default");
}

static int cmd_fixup(const char *rootdir) {
  size_t len;
  char *buf = read_all(CONFIG_FD, &len);
  close(CONFIG_FD);
  const char **v;
  int n = split(buf, len, &v);
  int root = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open %s", rootdir);
  char scratch[4096], t[64];
  const char *base;
  struct stat st;
  for (int i = 0; i < n;) {
    const char *op = v[i];
    if (!strcmp(op, "whiteout") && i + 1 < n) {
      int d = open_parent(root, v[i + 1], scratch, sizeof scratch, &base);
      // an entry of this layer with the same name wins: a whiteout hides lower layers only (OCI image spec)
      if (fstatat(d, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT) die("whiteout %s", v[i + 1]);
        if (mknodat(d, base, S_IFCHR | 0000, makedev(0, 0)) < 0) die("whiteout %s", v[i + 1]);
      }
      close(d);
      i += 2;
    } else if (!strcmp(op, "opaque") && i + 1 < n) {
      int fd = open_beneath(root, v[i + 1], O_RDONLY | O_DIRECTORY);
      if (fd < 0) die("opaque %s: cannot open it beneath the layer root", v[i + 1]);
      if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0) die("opaque %s", v[i + 1]);
      close(fd);
      i += 2;
    } else if (!strcmp(op, "mknod") && i + 6 < n) {
      // path mode(octal, with type bits) major minor uid gid
      int d = open_parent(root, v[i + 1], scratch, sizeof scratch, &base);
      mode_t mode = (mode_t)strtoul(v[i + 2], NULL, 8);
      if (!S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISFIFO(mode)) {
        errno = 0;
        die("mknod %s: mode %s is not a device or fifo", v[i + 1], v[i + 2]);
      }
      // the agent left an empty regular file as a placeholder; nothing else is replaced
      if (fstatat(d, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(st.st_mode)) {
          errno = 0;
          die("mknod %s: something other than the placeholder is there", v[i + 1]);
        }
        if (unlinkat(d, base, 0) < 0) die("mknod %s", v[i + 1]);
      }
      if (mknodat(d, base, mode, makedev((unsigned)atoi(v[i + 3]), (unsigned)atoi(v[i + 4]))) < 0)
        die("mknod %s", v[i + 1]);
      if (fchownat(d, base, (uid_t)atol(v[i + 5]), (gid_t)atol(v[i + 6]), AT_SYMLINK_NOFOLLOW) < 0)
        die("chown %s", v[i + 1]);
      // the node was just made by us in a directory no symlink led to: following is harmless
      if (fchmodat(d, base, mode & 07777, 0) < 0) die("chmod %s", v[i + 1]);
      close(d);
      i += 7;
    } else if (!strcmp(op, "xattr") && i + 3 < n) {
      if (!xattr_allowed(v[i + 2])) {
        errno = 0;
        die("xattr %s on %s: not on the allowlist", v[i + 2], v[i + 1]);
      }
      int d = open_parent(root, v[i + 1], scratch, sizeof scratch, &base);
      size_t hl = strlen(v[i + 3]);
      if (hl % 2) {
        errno = 0;
        die("xattr %s on %s: bad value", v[i + 2], v[i + 1]);
      }
      unsigned char *val = malloc(hl / 2 + 1);
      if (!val) die("out of memory");
      for (size_t k = 0; k < hl; k += 2) {
        int hi = hexval(v[i + 3][k]), lo = hexval(v[i + 3][k + 1]);
        if (hi < 0 || lo < 0) {
          errno = 0;
          die("xattr %s on %s: bad value", v[i + 2], v[i + 1]);
        }
        val[k / 2] = (unsigned char)(hi * 16 + lo);
      }
      // lsetxattr on "<dir fd>/<name>": the name is looked up in that directory and, last, not followed
      fdpath(t, sizeof t, d);
      char full[4200];
      snprintf(full, sizeof full, "%s/%s", t, base);
      if (lsetxattr(full, v[i + 2], val, hl / 2, 0) < 0 && errno != ENOTSUP) die("xattr %s on %s", v[i + 2], v[i + 1]);
      free(val);
      close(d);
      i += 4;
    } else if (!strcmp(op, "mtime") && i + 3 < n) {
      // path seconds nanoseconds: of a node made above, or of a directory it was made in
      int d = open_parent(root, v[i + 1], scratch, sizeof scratch, &base);
      struct timespec ts[2];
      ts[0].tv_sec = ts[1].tv_sec = (time_t)atoll(v[i + 2]);
      ts[0].tv_nsec = ts[1].tv_nsec = atol(v[i + 3]);
      if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999) {
        errno = 0;
        die("mtime %s: bad nanoseconds %s", v[i + 1], v[i + 3]);
      }
      if (utimensat(d, base, ts, AT_SYMLINK_NOFOLLOW) < 0) die("mtime %s", v[i + 1]);
      close(d);
      i += 4;
    } else {
      errno = 0;
      die("fixup: bad operation %s", op);
    }
  }
  return 0;
}

// ---------------------------------------------------------------- netcfg
//
// stdin: one task namespace per line,
//   <netns path> <ifname> <mtu> <gateway> <address> [<address> ...]
// stdout: one line per input line, in order: "ok" or "error <message>".
// For each: setns into it, bring lo up, set ifname's MTU and bring it up, add
// every address as /32, an on-link route to the gateway and the default route
// via the gateway (source: the first address). An error in one namespace does
// not stop the others.

struct nlreq {
  struct nlmsghdr h;
  char body[256];
};

static void nl_attr(struct nlreq *r, unsigned short type, const void *data, size_t len) {
  struct rtattr *a = (struct rtattr *)((char *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

// Sends one request and waits for its ack; 0 or a negative errno.
static int nl_talk(int s, struct nlreq *r, unsigned seq) {
  r->h.nlmsg_seq = seq;
  if (send(s, r, r->h.nlmsg_len, 0) < 0) return -errno;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

static void nl_init(struct nlreq *r, unsigned short type, unsigned short flags, size_t hdr) {
  memset(r, 0, sizeof *r);
  r->h.nlmsg_len = (unsigned)NLMSG_LENGTH(hdr);
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
}

static int link_up(int s, int idx, unsigned mtu, unsigned seq) {
  struct nlreq r;
  nl_init(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  struct ifinfomsg *i = NLMSG_DATA(&r.h);
  i->ifi_family = AF_UNSPEC;
  i->ifi_index = idx;
  i->ifi_flags = IFF_UP;
  i->ifi_change = IFF_UP;
  if (mtu) nl_attr(&r, IFLA_MTU, &mtu, sizeof mtu);
  return nl_talk(s, &r, seq);
}

static int addr_add(int s, int idx, struct in_addr a, unsigned seq) {
  struct nlreq r;
  nl_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
  struct ifaddrmsg *m = NLMSG_DATA(&r.h);
  m->ifa_family = AF_INET;
  m->ifa_prefixlen = 32;
  m->ifa_scope = RT_SCOPE_UNIVERSE;
  m->ifa_index = (unsigned)idx;
  nl_attr(&r, IFA_LOCAL, &a, sizeof a);
  nl_attr(&r, IFA_ADDRESS, &a, sizeof a);
  return nl_talk(s, &r, seq);
}

// dst NULL: the default route via gw; else an on-link /32 route to dst.
static int route_add(int s, int idx, const struct in_addr *dst, struct in_addr gw, struct in_addr src, unsigned seq) {
  struct nlreq r;
  nl_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
  struct rtmsg *m = NLMSG_DATA(&r.h);
  m->rtm_family = AF_INET;
  m->rtm_table = RT_TABLE_MAIN;
  m->rtm_protocol = RTPROT_BOOT;
  m->rtm_type = RTN_UNICAST;
  uint32_t oif = (uint32_t)idx;
  if (dst) {
    m->rtm_dst_len = 32;
    m->rtm_scope = RT_SCOPE_LINK;
    nl_attr(&r, RTA_DST, dst, sizeof *dst);
  } else {
    m->rtm_scope = RT_SCOPE_UNIVERSE;
    nl_attr(&r, RTA_GATEWAY, &gw, sizeof gw);
  }
  nl_attr(&r, RTA_OIF, &oif, sizeof oif);
  nl_attr(&r, RTA_PREFSRC, &src, sizeof src);
  return nl_talk(s, &r, seq);
}

// Configures one namespace; NULL on success, else a message in err.
static const char *netcfg_one(char *line, char *err, size_t errlen) {
  char *save = NULL, *tok[70];
  int n = 0;
  for (char *t = strtok_r(line, " \t", &save); t && n < 70; t = strtok_r(NULL, " \t", &save)) tok[n++] = t;
  if (n < 5) return snprintf(err, errlen, "want: <netns> <ifname> <mtu> <gateway> <address>..."), err;
  const char *ns = tok[0], *ifname = tok[1];
  unsigned mtu = (unsigned)strtoul(tok[2], NULL, 10);
  struct in_addr gw, addrs[64];
  int naddr = 0;
  if (inet_pton(AF_INET, tok[3], &gw) != 1) return snprintf(err, errlen, "bad gateway %s", tok[3]), err;
  for (int i = 4; i < n && naddr < 64; i++)
    if (inet_pton(AF_INET, tok[i], &addrs[naddr++]) != 1) return snprintf(err, errlen, "bad address %s", tok[i]), err;
  int fd = open(ns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return snprintf(err, errlen, "open %s: %s", ns, strerror(errno)), err;
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc < 0) return snprintf(err, errlen, "setns %s: %s", ns, strerror(e)), err;
  // the socket belongs to the namespace it is created in
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return snprintf(err, errlen, "netlink socket: %s", strerror(errno)), err;
  const char *what = NULL;
  unsigned seq = 1;
  int idx = (int)if_nametoindex(ifname);
  if (!idx) {
    snprintf(err, errlen, "%s: no interface %s", ns, ifname);
    close(s);
    return err;
  }
  if ((rc = link_up(s, (int)if_nametoindex("lo"), 0, seq++)) < 0) what = "set lo up";
  else if ((rc = link_up(s, idx, mtu, seq++)) < 0) what = "set the interface up";
  for (int i = 0; !what && i < naddr; i++)
    if ((rc = addr_add(s, idx, addrs[i], seq++)) < 0) what = "add an address";
  if (!what && (rc = route_add(s, idx, &gw, gw, addrs[0], seq++)) < 0) what = "add the route to the gateway";
  if (!what && (rc = route_add(s, idx, NULL, gw, addrs[0], seq++)) < 0) what = "add the default route";
  close(s);
  if (what) return snprintf(err, errlen, "%s: %s %s: %s", ns, what, ifname, strerror(-rc)), err;
  return NULL;
}

static int cmd_netcfg(void) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  char err[512];
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!n) continue;
    const char *e = netcfg_one(line, err, sizeof err);
    if (e) printf("error %s\n", e);
    else printf("ok\n");
  }
  free(line);
  return fflush(stdout) == 0 ? 0 : 1;
}

// ---------------------------------------------------------------- main

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run();
  if (argc >= 2 && !strcmp(argv[1], "exec")) return cmd_exec();
  if (argc >= 3 && !strcmp(argv[1], "fixup")) return cmd_fixup(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "netcfg")) return cmd_netcfg();
  fprintf(stderr, "usage: convoy-init run|exec|fixup ROOT|netcfg  (configuration on fd 3, netcfg: stdin; see docs/runtime.md)\n");
  return 2;
}
