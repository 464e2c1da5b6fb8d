// The seccomp allowlist of Convoy's containers: the semantics of Docker's
// default profile (moby/profiles, seccomp/default.json), written as our own
// table. Everything not allowed here fails with EPERM. convoy-init.c builds the
// filter from it at each start (apply_seccomp): names are resolved for the
// native architecture by libseccomp, and a name this architecture (or this
// libseccomp) does not know is skipped, so one table serves every
// architecture, as Docker's does.
//
// Deliberately absent (EPERM, whatever the capabilities unless listed in
// allow_with_cap): keyrings (add_key, keyctl, request_key), userfaultfd,
// io_uring_*, kexec_*, swapon/swapoff, the old sysctl, uselib, ustat, sysfs,
// nfsservctl, vm86, create_module, query_module, get_kernel_syms,
// pivot_root; and without their capability (allow_with_cap): mount, unshare,
// setns, namespace flags of clone, bpf, perf_event_open, open_by_handle_at,
// module loading, setting the clock, reboot, acct, syslog, iopl/ioperm,
// kcmp, pidfd_getfd, process_madvise, vhangup, NUMA policies.

#ifndef CONVOY_SECCOMP_ALLOW_H
#define CONVOY_SECCOMP_ALLOW_H

// Allowed for every container. One string of space-separated names per
// group, for reading; the order does not matter.
static const char *const allow_always[] = {
    // processes and threads
    "capget capset execve execveat exit exit_group fork get_robust_list get_thread_area getcpu "
    "getpgid getpgrp getpid getppid getrusage getsid gettid kill landlock_add_rule "
    "landlock_create_ruleset landlock_restrict_self map_shadow_stack membarrier pidfd_open "
    "pidfd_send_signal prctl process_mrelease restart_syscall riscv_hwprobe rseq seccomp "
    "set_robust_list set_thread_area set_tid_address setpgid setsid sysinfo tgkill times tkill uname "
    "uretprobe vfork wait4 waitid waitpid ",
    // users and groups (the kernel checks CAP_SETUID/CAP_SETGID)
    "getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getresgid getresgid32 "
    "getresuid getresuid32 getuid getuid32 setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 "
    "setgroups setgroups32 setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid "
    "setreuid32 setuid setuid32 ",
    // limits, priorities, scheduling
    "getpriority getrlimit ioprio_get ioprio_set prlimit64 sched_get_priority_max "
    "sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler "
    "sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr "
    "sched_setparam sched_setscheduler sched_yield setpriority setrlimit ugetrlimit ",
    // signals
    "alarm pause rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend "
    "rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack signalfd signalfd4 "
    "sigprocmask sigreturn ",
    // memory
    "brk cachestat madvise memfd_create memfd_secret mincore mlock mlock2 mlockall mmap mmap2 "
    "mprotect mremap mseal msync munlock munlockall munmap pkey_alloc pkey_free pkey_mprotect "
    "remap_file_pages ",
    // time: reading it (adjtimex and clock_adjtime only change the clock with CAP_SYS_TIME, checked by the kernel)
    "adjtimex clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime "
    "clock_gettime64 clock_nanosleep clock_nanosleep_time64 getitimer gettimeofday nanosleep "
    "setitimer time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 "
    "timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime "
    "timerfd_settime64 ",
    // futexes
    "futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake ",
    // waiting on file descriptors
    "_newselect epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 "
    "epoll_wait epoll_wait_old eventfd eventfd2 fanotify_mark inotify_add_watch inotify_init "
    "inotify_init1 inotify_rm_watch poll ppoll ppoll_time64 pselect6 pselect6_time64 select ",
    // extended attributes
    "fgetxattr flistxattr fremovexattr fsetxattr getxattr getxattrat lgetxattr listxattr listxattrat "
    "llistxattr lremovexattr lsetxattr removexattr removexattrat setxattr setxattrat ",
    // sockets (socket(2) itself is filtered by family, below)
    "accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom recvmmsg "
    "recvmmsg_time64 recvmsg send sendfile sendfile64 sendmmsg sendmsg sendto setsockopt shutdown "
    "socketcall socketpair ",
    // System V and POSIX IPC
    "ipc mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend "
    "mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd semctl semget semop semtimedop "
    "semtimedop_time64 shmat shmctl shmdt shmget ",
    // asynchronous I/O (io_uring is not allowed, as in Docker)
    "io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit ",
    // files, directories, pipes
    "_llseek access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3 "
    "faccessat faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod fchmodat fchmodat2 fchown "
    "fchown32 fchownat fcntl fcntl64 fdatasync flock fstat fstat64 fstatat64 fstatfs fstatfs64 fsync "
    "ftruncate ftruncate64 futimesat getcwd getdents getdents64 getrandom ioctl lchown lchown32 link "
    "linkat listmount lseek lstat lstat64 mkdir mkdirat mknod mknodat name_to_handle_at newfstatat "
    "open openat openat2 pipe pipe2 pread64 preadv preadv2 pwrite64 pwritev pwritev2 read readahead "
    "readlink readlinkat readv rename renameat renameat2 rmdir splice stat stat64 statfs statfs64 "
    "statmount statx symlink symlinkat sync sync_file_range syncfs tee truncate truncate64 umask "
    "unlink unlinkat utime utimensat utimensat_time64 utimes vmsplice write writev ",
    // architecture-specific (skipped where they do not exist)
    "arch_prctl modify_ldt "                                           // x86
    "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls sync_file_range2 " // arm
    "swapcontext "                                                      // powerpc
    "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr "       // s390
    "riscv_flush_icache",                                               // riscv
    NULL,
};

// ptrace and reading or writing another process's memory: allowed on
// kernels >= 4.8, where seccomp runs again after a tracer changed a syscall
// (before, ptrace could bypass the filter). Who may be traced is the kernel's
// business: the same user, no more capabilities than the tracer (CAP_SYS_PTRACE
// is not in the default set), and only processes of the container's pid
// namespace are visible at all.
static const char allow_ptrace_4_8[] = "ptrace process_vm_readv process_vm_writev";

// Allowed only when the container has the capability (as Docker's profile's
// "includes": {"caps": [...]}), so that --cap-add works as with Docker: the
// kernel then checks the capability itself.
static const struct {
  int cap;
  const char *names;
} allow_with_cap[] = {
    {CAP_DAC_READ_SEARCH, "open_by_handle_at"},
    // new namespaces, mounts (old and new API), hostnames, kernel logs, quotas, fanotify
    {CAP_SYS_ADMIN, "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
                    "lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount "
                    "open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog "
                    "umount umount2 unshare"},
    {CAP_SYS_BOOT, "reboot"},
    {CAP_SYS_CHROOT, "chroot"},
    {CAP_SYS_MODULE, "delete_module finit_module init_module"},
    {CAP_SYS_PACCT, "acct"},
    {CAP_SYS_PTRACE, "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"},
    {CAP_SYS_RAWIO, "ioperm iopl"},
    {CAP_SYS_TIME, "clock_settime clock_settime64 settimeofday stime"},
    {CAP_SYS_TTY_CONFIG, "vhangup"},
    {CAP_SYS_NICE, "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"},
    {CAP_SYSLOG, "syslog"},
    {CAP_BPF, "bpf"},
    {CAP_PERFMON, "perf_event_open"},
};

// personality(2) only with the values programs use to query or to ask for the
// Linux (0x0), 32-bit-address (0x8, PER_LINUX32) and UNAME26 (0x20000,
// 0x20008) personalities, and 0xffffffff (query); not, for instance,
// ADDR_NO_RANDOMIZE, which would turn off ASLR for what the process runs.
static const unsigned long allow_personality[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// socket(2) of every address family but AF_ALG (38: the kernel's crypto API,
// a frequent source of kernel bugs) and AF_VSOCK (40: talks to the
// hypervisor), as Docker's profile.
#define SOCKET_AF_ALG 38
#define SOCKET_AF_VSOCK 40

// clone(2) without CAP_SYS_ADMIN: no namespace flag (CLONE_NEWNS, NEWCGROUP,
// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET); clone3 then fails with ENOSYS
// (its flags are in memory, which seccomp cannot read) so that libc falls
// back to clone.
#define CLONE_NAMESPACE_FLAGS 0x7E020000UL

#endif
