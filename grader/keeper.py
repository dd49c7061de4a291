"""The keeper: a tiny process between llm-lab and every child it starts, so that no descendant of a
grade or a training run outlives it.

    python -I -B -m grader.keeper PARENT_PID FD[,FD...] -- CHILD_ARGV...

It becomes a child subreaper (Linux), so every process the child starts stays in its tree even
after a double fork or `setsid`; it starts the child (handing on the listed file descriptors, then
closing its own copies), reaps orphans, and when the child ends, kills every descendant left. It
also kills the whole tree when llm-lab dies (parent-death signal) or asks it to (SIGTERM). It exits
with the child's status: the same code, or killed by the same signal.

Imports only the standard library and runs no learner code. Not handled: a descendant that kills
the keeper itself on purpose (its own process group is still killed by the parent), non-Linux
systems (no subreaper: descendants that leave the process group can outlive the grade there).
"""
from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc; empty where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []   # kernels without the children file: read every process's parent
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def kill_tree(root: int) -> None:
    """SIGKILL every descendant of `root` (not root itself). Killed parents' orphans come back to us
    (we are their subreaper) and are killed on the next pass."""
    for _ in range(200):
        stack, seen = list(_children(root)), []
        while stack:
            pid = stack.pop()
            seen.append(pid)
            stack.extend(_children(pid))
        if not seen:
            return
        for pid in seen:
            try:
                os.kill(pid, signal.SIGSTOP)   # frozen first: nothing forks while we sweep
            except ProcessLookupError:
                pass
        for pid in seen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv: list[str]) -> int:
    parent, fds, sep, *child = argv
    if sep != "--" or not child:
        print("usage: python -m grader.keeper PARENT_PID FD[,FD] -- ARGV...", file=sys.stderr)
        return 2
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):
        pass
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):   # llm-lab died before we could ask to be told
        return 1
    keep = tuple(int(f) for f in fds.split(",") if f)
    me = os.getpid()

    def stop(signum, frame):
        kill_tree(me)
        os.kill(me, signal.SIGKILL)   # the parent sees a killed child, as without a keeper

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the child handles SIGINT (graceful stop)
    pid = os.fork()
    if pid == 0:   # the child: default SIGINT again, dies if the keeper dies
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd in keep:
            os.set_inheritable(fd, True)
        try:
            os.execv(child[0], child)
        finally:
            os._exit(127)
    for fd in keep:
        os.close(fd)   # only the child holds the results channel: its end means the channel's end
    status = 0
    while True:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if got == pid:
            status = st
            break
    kill_tree(me)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(me, sig)   # the parent sees the child's own death
        return 128 + sig
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
