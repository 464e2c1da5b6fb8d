// probe: makes the syscalls a hostile container would try, one per argument,
// and prints "<name> ok" or "<name> <errno name>" for each (runtime-security
// int test). Built static (no libc needed in the image) by the native
// Makefile into agent/runtime/native/build/probe. Every call is harmless if it
// were to succeed: the clock is set to the time just read, reboot gets a bad
// magic number, the module is not a module, a new namespace is left at once.
//
//   probe mount unshare-user ptrace:1234 ...
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long clone_ns(unsigned long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid < 0 ? -1 : 0;
}

static long run(const char *name) {
  struct timespec now;
  struct timeval tv;
  if (!strcmp(name, "mount")) return mount("probe", "/tmp", "tmpfs", 0, NULL);
  if (!strcmp(name, "umount")) return umount2("/proc", MNT_DETACH);
  if (!strcmp(name, "finit_module")) {
    int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
    return syscall(SYS_finit_module, fd, "", 0);
  }
  if (!strcmp(name, "init_module")) return syscall(SYS_init_module, "x", 1UL, "");
  if (!strcmp(name, "delete_module")) return syscall(SYS_delete_module, "convoy_probe_none", O_NONBLOCK);
  if (!strcmp(name, "clock_settime")) {
    clock_gettime(CLOCK_REALTIME, &now);
    return clock_settime(CLOCK_REALTIME, &now);
  }
  if (!strcmp(name, "settimeofday")) {
    gettimeofday(&tv, NULL);
    return settimeofday(&tv, NULL);
  }
  if (!strcmp(name, "adjtimex-read")) {
    struct timex t = {.modes = 0};
    return adjtimex(&t) < 0 ? -1 : 0;
  }
  if (!strcmp(name, "adjtimex-set")) {
    struct timex t = {.modes = 0};
    if (adjtimex(&t) < 0) return -1;
    t.modes = ADJ_FREQUENCY; // the frequency just read: no change if it were allowed
    return adjtimex(&t) < 0 ? -1 : 0;
  }
  if (!strncmp(name, "ptrace:", 7)) {
    long r = ptrace(PTRACE_ATTACH, (pid_t)atoi(name + 7), NULL, NULL);
    if (r == 0) ptrace(PTRACE_DETACH, (pid_t)atoi(name + 7), NULL, NULL);
    return r;
  }
  if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  if (!strcmp(name, "add_key")) return syscall(SYS_add_key, "user", "convoy-probe", "x", 1, KEY_SPEC_SESSION_KEYRING);
  if (!strcmp(name, "request_key")) return syscall(SYS_request_key, "user", "convoy-probe", NULL, 0);
  if (!strcmp(name, "bpf")) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    if (fd >= 0) close((int)fd);
    return fd < 0 ? -1 : 0;
  }
  if (!strcmp(name, "perf_event_open")) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd >= 0) close((int)fd);
    return fd < 0 ? -1 : 0;
  }
  if (!strcmp(name, "userfaultfd")) {
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd >= 0) close((int)fd);
    return fd < 0 ? -1 : 0;
  }
  if (!strcmp(name, "unshare-user")) return unshare(CLONE_NEWUSER);
  if (!strcmp(name, "unshare-mnt")) return unshare(CLONE_NEWNS);
  if (!strcmp(name, "clone-newns")) return clone_ns(CLONE_NEWNS);
  if (!strcmp(name, "clone-newuser")) return clone_ns(CLONE_NEWUSER);
  if (!strcmp(name, "clone")) return clone_ns(0);
  if (!strcmp(name, "clone3")) return syscall(SYS_clone3, NULL, 0);
  if (!strcmp(name, "setns")) {
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    return setns(fd, CLONE_NEWNET);
  }
  if (!strcmp(name, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
  if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL);
  if (!strcmp(name, "reboot")) return syscall(SYS_reboot, 0, 0, 0, NULL); // bad magic
  if (!strcmp(name, "io_uring_setup")) return syscall(SYS_io_uring_setup, 1, NULL);
  if (!strcmp(name, "personality-query")) return personality(0xffffffff) < 0 ? -1 : 0;
  if (!strcmp(name, "personality-norandom")) return personality(ADDR_NO_RANDOMIZE) < 0 ? -1 : 0;
  if (!strcmp(name, "socket-alg")) {
    int s = socket(38 /* AF_ALG */, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s >= 0) close(s);
    return s < 0 ? -1 : 0;
  }
  if (!strcmp(name, "socket-inet")) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) close(s);
    return s < 0 ? -1 : 0;
  }
  if (!strcmp(name, "chroot")) return chroot("/");
  if (!strcmp(name, "getpid")) return getpid() > 0 ? 0 : -1;
  errno = EINVAL;
  return -2;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    errno = 0;
    long r = run(argv[i]);
    if (r == -2) printf("%s unknown-probe\n", argv[i]);
    else if (r < 0) printf("%s %s\n", argv[i], strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
    else printf("%s ok\n", argv[i]);
    fflush(stdout);
  }
  return 0;
}
