#ifndef LOCKLOCK_SUPERVISED_SPAWN_H
#define LOCKLOCK_SUPERVISED_SPAWN_H

#include <signal.h>
#include <sys/types.h>

/// Starts `file` (looked up on PATH) with `argv` and the caller's environment as the leader of
/// a new process group, with an empty signal mask and the signals in `defaults` at their
/// default disposition (the others as the caller has them: an ignored SIGHUP under nohup stays
/// ignored). With `die_with_parent` (Linux), the kernel sends the command SIGKILL when
/// the calling thread ends, so call it from a thread that lives until the command is reaped.
///
/// Returns the command's pid, or -1 with `*error` set to the errno of the step that failed
/// (the exec's own, such as ENOENT, when the command cannot be started).
pid_t locklock_supervised_spawn(const char *file, char *const argv[], const sigset_t *defaults, int die_with_parent, int *error);

/// Linux: starts a guard process that sends SIGKILL to the process group `group` when this
/// process dies (the kernel tells it, even of SIGKILL), so that the children a command
/// started do not outlive it. The caller ends the guard with SIGKILL
/// (which it cannot catch) once the group may live on, and reaps it. Call it from the thread
/// that spawned the command. Returns the guard's pid, or -1 with `*error` set (ENOSYS
/// elsewhere than Linux).
pid_t locklock_group_guard(pid_t group, int *error);

/// Whether `signal` is ignored in this process (as `nohup` leaves SIGHUP).
int locklock_signal_is_ignored(int signal);

#endif
