/* test-proc.c — process identity: start time, liveness, pid reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/timeutil.h"

static void test_self_start_time_is_stable(void **state)
{
	(void)state;
	uint64_t a = 0, b = 0;
	assert_int_equal(proc_start_time(getpid(), &a), 0);
	assert_int_equal(proc_start_time(getpid(), &b), 0);
	assert_true(a > 0);
	assert_true(a == b);
	assert_int_equal(proc_check(getpid(), a), PROC_ALIVE);
}

static void test_gone_and_reused(void **state)
{
	(void)state;
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	uint64_t st;
	assert_int_equal(proc_start_time(child, &st), 0);
	assert_int_equal(proc_check(child, st), PROC_ALIVE);
	/* Same pid, another start time: that is pid reuse, a dead owner. */
	assert_int_equal(proc_check(child, st + 1), PROC_REUSED);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(proc_check(child, st), PROC_GONE);
	assert_int_equal(proc_start_time(child, &st), -ESRCH);
	assert_int_equal(proc_start_time(0, &st), -EINVAL);
}

static void test_host_id(void **state)
{
	(void)state;
	char buf[64], owner[64], other_boot[64];
	const char *source = NULL;
	unsetenv("BOXD_HOST_ID");
	unsetenv("BOXD_FAKE_BOOT_ID");
	/* Not the boot id: the machine id, which a reboot keeps. */
	assert_int_equal(host_id_get_from(buf, sizeof(buf), &source), 0);
	if (access("/etc/machine-id", R_OK) == 0) {
		assert_string_equal(source, "/etc/machine-id");
		assert_int_equal(strlen(buf), 32);
	}
	setenv("BOXD_HOST_ID", "host-b", 1);
	assert_int_equal(host_id_get(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "host-b");

	/* The owner id: host id and a boot tag; another boot of the same host
	 * (BOXD_FAKE_BOOT_ID, the named fake of a reboot) is told apart. */
	assert_int_equal(host_owner_id_get(owner, sizeof(owner)), 0);
	assert_int_equal(strncmp(owner, "host-b/", 7), 0);
	assert_int_equal(strlen(owner), 7 + HOST_BOOT_TAG_LEN);
	assert_int_equal(host_owner_host_len(owner), 6);
	setenv("BOXD_FAKE_BOOT_ID", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", 1);
	assert_int_equal(host_owner_id_get(other_boot, sizeof(other_boot)), 0);
	assert_string_equal(other_boot, "host-b/aaaaaaaabbbb");
	assert_true(host_owner_earlier_boot(other_boot, owner));
	assert_true(host_owner_earlier_boot(owner, other_boot));
	assert_false(host_owner_earlier_boot(owner, owner));
	assert_false(host_owner_earlier_boot("host-bb/aaaaaaaabbbb", owner)); /* another host */
	assert_false(host_owner_earlier_boot("host", owner));
	assert_false(host_owner_earlier_boot("host-b", owner)); /* an older boxd's id: not ours to judge */
	unsetenv("BOXD_FAKE_BOOT_ID");

	/* Host ids go into lock names and owner ids. */
	setenv("BOXD_HOST_ID", "bad/host", 1);
	assert_int_equal(host_id_get(buf, sizeof(buf)), -EINVAL);
	assert_false(host_id_valid(""));
	assert_false(host_id_valid("-x"));
	assert_false(host_id_valid("a b"));
	assert_false(host_id_valid("a:b"));
	assert_false(host_id_valid("0123456789012345678901234567890123456789012345678"));
	assert_true(host_id_valid("012345678901234567890123456789012345678901234567"));
	assert_true(host_id_valid("web-1.example_2"));
	unsetenv("BOXD_HOST_ID");
}

static void test_durations(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(parse_duration_ms("30", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(parse_duration_ms("1.5", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(parse_duration_ms("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(parse_duration_ms("", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("-1", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("5 parsecs", &ms), -EINVAL);
	char buf[32];
	format_rfc3339_ms(1764289700123, buf, sizeof(buf));
	assert_string_equal(buf, "2025-11-28T00:28:20.123Z");
}

/* A child that waits until killed. */
static pid_t sleeper(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* The pidfd of ref becomes readable: the process exited (10 s at most). */
static bool pidfd_says_exited(const struct proc_ref *ref)
{
	struct pollfd p = { .fd = ref->pidfd, .events = POLLIN };
	return poll(&p, 1, 10000) == 1 && (p.revents & POLLIN);
}

static void test_ref_of_a_running_child(void **state)
{
	(void)state;
	pid_t pid = sleeper();
	uint64_t st;
	assert_int_equal(proc_start_time(pid, &st), 0);
	struct proc_ref ref;
	assert_int_equal(proc_ref_open(pid, st, &ref), 0);
	assert_int_equal(ref.pid, pid);
	assert_true(ref.pidfd >= 0);
	assert_true(ref.start_time == st);
	assert_int_equal(proc_ref_check(&ref), PROC_ALIVE);
	/* Any process with the pid (start time 0): the same one here, and its
	 * start time is filled in. */
	struct proc_ref any;
	assert_int_equal(proc_ref_open(pid, 0, &any), 0);
	assert_true(any.start_time == st);
	proc_ref_close(&any);
	assert_int_equal(any.pidfd, -1);
	assert_int_equal(any.pid, 0);

	/* Exited, not reaped yet: a zombie is gone, and the pidfd says so. */
	kill(pid, SIGKILL);
	assert_true(pidfd_says_exited(&ref));
	assert_int_equal(proc_ref_check(&ref), PROC_GONE);
	/* ... so a reference to that very process cannot be opened, but one to
	 * "whatever has the pid" can: the zombie still has to be reaped. */
	assert_int_equal(proc_ref_open(pid, st, &any), -ESRCH);
	assert_int_equal(proc_ref_open(pid, 0, &any), 0);
	assert_true(any.start_time == 0);
	assert_int_equal(proc_ref_check(&any), PROC_GONE);
	proc_ref_close(&any);

	/* The held pidfd reaps it (as the supervisor does). */
	siginfo_t info = { 0 };
	assert_int_equal(waitid(P_PIDFD, (id_t)ref.pidfd, &info, WEXITED), 0);
	assert_int_equal(info.si_pid, pid);
	assert_int_equal(info.si_code, CLD_KILLED);
	assert_int_equal(proc_ref_check(&ref), PROC_GONE);
	proc_ref_close(&ref);
	assert_int_equal(proc_ref_open(pid, st, &ref), -ESRCH);
	assert_int_equal(proc_ref_open(0, 0, &ref), -EINVAL);
}

static void test_ref_of_a_child_just_started(void **state)
{
	(void)state;
	pid_t pid = sleeper();
	int pidfd = pidfd_open_pid(pid);
	assert_true(pidfd >= 0);
	assert_true(fcntl(pidfd, F_GETFD) & FD_CLOEXEC);
	struct proc_ref ref = proc_ref_of_child(pid, pidfd);
	uint64_t st;
	assert_int_equal(proc_start_time(pid, &st), 0);
	assert_true(ref.start_time == st);
	assert_int_equal(proc_ref_check(&ref), PROC_ALIVE);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(proc_ref_check(&ref), PROC_GONE);
	proc_ref_close(&ref);
}

/* Clock ticks since boot, the unit of start times. */
static uint64_t now_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	long hz = sysconf(_SC_CLK_TCK);
	return (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)ts.tv_nsec / (1000000000ULL / (uint64_t)hz);
}

/* A real pid reuse: the kernel is asked (ns_last_pid, root) to give the
 * next child the pid of one that is gone. Its start time differs as long
 * as the two did not start within the same clock tick, which the test
 * waits out; the reference to the first must then not open on the second.
 * Skipped where ns_last_pid cannot be written, or when another process
 * takes the pid first every time. */
static void test_real_pid_reuse(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 20; attempt++) {
		pid_t first = sleeper();
		uint64_t st;
		assert_int_equal(proc_start_time(first, &st), 0);
		kill(first, SIGKILL);
		waitpid(first, NULL, 0);
		while (now_ticks() <= st + 1)
			usleep(1000); /* the next tick, not an ordering: start times are per tick */
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
		if (!f)
			skip();
		int w = fprintf(f, "%d", (int)first - 1);
		if (fclose(f) != 0 || w < 0)
			skip();
		pid_t second = sleeper();
		if (second != first) {
			kill(second, SIGKILL);
			waitpid(second, NULL, 0);
			continue; /* someone else took the pid: try again */
		}
		assert_int_equal(proc_check(first, st), PROC_REUSED);
		struct proc_ref ref;
		assert_int_equal(proc_ref_open(first, st, &ref), -ESRCH);
		/* The new process itself is fine by its own start time. */
		uint64_t st2;
		assert_int_equal(proc_start_time(second, &st2), 0);
		assert_true(st2 != st);
		assert_int_equal(proc_ref_open(second, st2, &ref), 0);
		assert_int_equal(proc_ref_check(&ref), PROC_ALIVE);
		proc_ref_close(&ref);
		kill(second, SIGKILL);
		waitpid(second, NULL, 0);
		return;
	}
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_start_time_is_stable),
		cmocka_unit_test(test_gone_and_reused),
		cmocka_unit_test(test_host_id),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_ref_of_a_running_child),
		cmocka_unit_test(test_ref_of_a_child_just_started),
		cmocka_unit_test(test_real_pid_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
