// SPDX-License-Identifier: GPL-2.0
/*
 * The QEMU stage's workload: user tasks asleep in the kernel in as many ways
 * as a real system has them, so that a capture holds every shape of stack
 * the walk must agree on. Built static for arm64 (no libc in the initramfs
 * but busybox's own).
 *
 *   nanosleep, pipe read, ppoll, pselect6, epoll_pwait, futex wait: one child each
 *   userfault: a child whose read() faults on a userfaultfd page in kernel
 *              mode (copy_to_user in pipe_read) and sleeps in handle_userfault
 *   the parent: wait4 on all of them
 *
 * It prints "workload: ready" once every child has been started, then
 * sleeps until killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	_exit(1);
}

static void sleep_nanosleep(void)
{
	struct timespec ts = { .tv_sec = 100000 };

	for (;;)
		nanosleep(&ts, NULL);
}

static void sleep_pipe_read(void)
{
	int p[2];
	char c;

	if (pipe(p))
		die("pipe");
	for (;;)
		read(p[0], &c, 1);
}

static void sleep_ppoll(void)
{
	int p[2];
	struct pollfd pfd;

	if (pipe(p))
		die("pipe");
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	for (;;)
		ppoll(&pfd, 1, NULL, NULL);
}

static void sleep_pselect(void)
{
	int p[2];
	fd_set rfds;

	if (pipe(p))
		die("pipe");
	for (;;) {
		FD_ZERO(&rfds);
		FD_SET(p[0], &rfds);
		pselect(p[0] + 1, &rfds, NULL, NULL, NULL, NULL);
	}
}

static void sleep_epoll(void)
{
	int p[2], ep;
	struct epoll_event ev = { .events = EPOLLIN }, out;

	if (pipe(p))
		die("pipe");
	ep = epoll_create1(0);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev))
		die("epoll");
	for (;;)
		epoll_pwait(ep, &out, 1, -1, NULL);
}

static void sleep_futex(void)
{
	static uint32_t word;

	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* A kernel-mode fault held by userfaultfd: pipe_read's copy to user faults on a missing page nobody serves. */
static void sleep_userfault(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	int uffd, p[2];
	char *area;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		die("userfaultfd");
	area = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap");
	reg = (struct uffdio_register){ .range = { .start = (uintptr_t)area, .len = page },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	if (pipe(p) || write(p[1], "klpsim", 6) != 6)
		die("pipe");
	read(p[0], area, 6);
	die("read returned from a fault nobody served");
}

static pid_t start(void (*fn)(void), const char *name)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		fn();
		_exit(0);
	}
	printf("workload: %s is pid %d\n", name, pid);
	return pid;
}

int main(void)
{
	int status;

	setvbuf(stdout, NULL, _IONBF, 0);
	start(sleep_nanosleep, "nanosleep");
	start(sleep_pipe_read, "pipe read");
	start(sleep_ppoll, "ppoll");
	start(sleep_pselect, "pselect6");
	start(sleep_epoll, "epoll_pwait");
	start(sleep_futex, "futex");
	start(sleep_userfault, "userfault");
	printf("workload: ready\n");
	while (wait4(-1, &status, 0, NULL) > 0 || errno == EINTR)
		;
	return 0;
}
