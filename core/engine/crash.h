/*
 * crash.h - what hostd leaves behind when a plugin crashes it.
 *
 * A plugin that dereferences a bad pointer, aborts, divides by zero or
 * overflows its stack takes the whole process with it: that cannot be
 * prevented in one address space, but it must not be silent. crash_install
 * puts a handler on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (run on an
 * alternate stack, so a stack overflow is caught too) that writes, to
 * stderr and to a crash record file next to the run's store, which stage
 * was running (its plugin, version, build-id and file, the callback in
 * progress), the signal and faulting address, and a backtrace whose frames
 * inside the plugin are given as file+offset for addr2line. Then the
 * signal takes its default course (the process dies with it, exit status
 * 128+signal). `hostd runs` shows such a run as "crashed" and `hostd report`
 * prints its record (cli_runs.c).
 *
 * Async-signal-safety: the handler formats with its own integer and string
 * writers into a stack buffer and uses write(2) and open(2); the backtrace
 * is libunwind's unw_backtrace (documented safe for local unwinding); frame
 * names come from glibc's backtrace_symbols_fd, which does not allocate but
 * does look symbols up through the loader: best effort in a dying process.
 */
#ifndef OBS_CRASH_H
#define OBS_CRASH_H

struct stage;

/* Installs the handlers (process-wide, once). */
void crash_install(void);
/* Where the record goes (copied; NULL or "": stderr only). Call before
 * the stage threads start. */
void crash_set_record(const char *path);
/* The calling thread runs stage s from now on (its alternate signal stack
 * is set up here); crash_thread_leave undoes it. Stage threads only. */
void crash_thread_enter(const struct stage *s);
void crash_thread_leave(void);

/* The record file of run `run_id` in store directory `store_dir`:
 * "<store_dir>/crash-run-<id>.txt", into buf. */
void crash_record_path(const char *store_dir, unsigned long long run_id, char *buf,
                       unsigned long len);

#endif /* OBS_CRASH_H */
