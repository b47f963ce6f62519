#define _GNU_SOURCE
#include "supervised_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>

extern char **environ;

pid_t locklock_supervised_spawn(const char *file, char *const argv[], const sigset_t *defaults, int die_with_parent, int *error) {
    // The exec's failure travels back through a pipe that closes on a successful exec.
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        // The child of a multithreaded process: async-signal-safe calls only, until exec.
        int failure = 0;
        if (setpgid(0, 0) != 0) failure = errno;
#ifdef __linux__
        if (failure == 0 && die_with_parent) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) failure = errno;
            // The parent may have died before prctl took effect.
            else if (getppid() != parent) _exit(127);
        }
#else
        (void)die_with_parent;
        (void)parent;
#endif
        if (failure == 0) {
            struct sigaction to_default;
            memset(&to_default, 0, sizeof to_default);
            to_default.sa_handler = SIG_DFL;
            for (int signal = 1; signal < NSIG; signal++) {
                if (sigismember(defaults, signal) == 1) sigaction(signal, &to_default, NULL);
            }
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execvp(file, argv);
            failure = errno;
        }
        ssize_t ignored = write(report[1], &failure, sizeof failure);
        (void)ignored;
        _exit(127);
    }
    // Also from the parent, so that the group exists before anyone signals it.
    setpgid(pid, pid);
    close(report[1]);
    int failure = 0;
    ssize_t count;
    do {
        count = read(report[0], &failure, sizeof failure);
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof failure) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *error = failure;
        return -1;
    }
    return pid;
}

#ifdef __linux__
// The guard's own copies, set in the guard after fork.
static volatile pid_t guarded_group;
static volatile pid_t guard_parent;

static void kill_guarded_group(int signal) {
    (void)signal;
    // Another process may send the same signal: only the parent's death counts.
    if (getppid() == guard_parent) return;
    kill(-guarded_group, SIGKILL);
    _exit(0);
}
#endif

pid_t locklock_group_guard(pid_t group, int *error) {
#ifdef __linux__
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        return -1;
    }
    if (pid == 0) {
        // Async-signal-safe calls only: this child of a multithreaded process never execs.
        guarded_group = group;
        guard_parent = parent;
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        struct sigaction on_death;
        memset(&on_death, 0, sizeof on_death);
        on_death.sa_handler = kill_guarded_group;
        sigfillset(&on_death.sa_mask);
        sigaction(SIGUSR1, &on_death, NULL);
        if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0 || getppid() != parent) {
            kill(-group, SIGKILL);
            _exit(0);
        }
        sigset_t only_death;
        sigfillset(&only_death);
        sigdelset(&only_death, SIGUSR1);
        for (;;) sigsuspend(&only_death);
    }
    return pid;
#else
    (void)group;
    *error = ENOSYS;
    return -1;
#endif
}

int locklock_signal_is_ignored(int signal) {
    struct sigaction current;
    if (sigaction(signal, NULL, &current) != 0) return 0;
    return current.sa_handler == SIG_IGN;
}
