/* private_bpffs.h - gives a kernel test a machine as fresh as CI's.
 *
 * The test process moves into a mount namespace of its own and detaches
 * whatever the host has at /sys/fs/bpf there, so it starts as on a new VM
 * where nothing mounted a bpffs. A test that needs one then mounts a fresh
 * bpffs at /sys/fs/bpf inside that namespace. Nothing is seen outside, and
 * the namespace (with every pin in it) ends with the process, even when it
 * crashes or is killed: no test leaves a mount behind, and none passes only
 * because an earlier test or the host mounted one. Needs root.
 */
#ifndef ITR_TEST_PRIVATE_BPFFS_H
#define ITR_TEST_PRIVATE_BPFFS_H

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static inline int itr_test_bpffs_mounted(void)
{
	struct statfs st;
	return statfs("/sys/fs/bpf", &st) == 0 && (unsigned long)st.f_type == BPF_FS_MAGIC;
}

/* Own mount namespace, nothing at /sys/fs/bpf. 0, or -1 with a message. */
static inline int itr_test_private_mount_ns(void)
{
	if (unshare(CLONE_NEWNS) != 0) {
		fprintf(stderr, "unshare(CLONE_NEWNS): %s (kernel tests need root)\n",
		        strerror(errno));
		return -1;
	}
	/* Private propagation first: without it the unmounts below would reach
	 * the host's namespace through a shared "/". */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "making / private: %s\n", strerror(errno));
		return -1;
	}
	/* Several bpffs may be stacked there; take them all off. */
	while (itr_test_bpffs_mounted()) {
		if (umount2("/sys/fs/bpf", MNT_DETACH) != 0) {
			fprintf(stderr, "unmounting /sys/fs/bpf: %s\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Own mount namespace with a fresh, empty bpffs at /sys/fs/bpf. */
static inline int itr_test_private_bpffs(void)
{
	if (itr_test_private_mount_ns() != 0)
		return -1;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) {
		fprintf(stderr, "mounting a private bpffs at /sys/fs/bpf: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

#endif
