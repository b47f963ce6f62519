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

int locklock_signal_is_ignored(int signal) {
    struct sigaction current;
    if (sigaction(signal, NULL, &current) != 0) return 0;
    return current.sa_handler == SIG_IGN;
}
