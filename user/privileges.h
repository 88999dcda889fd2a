/* privileges.h - least privilege for itrackerd: once the data plane is
 * loaded and attached and the map installed, and before any thread or
 * listener exists, become a dedicated user and keep only the capabilities
 * the rest of the run needs.
 */
#ifndef ITR_PRIVILEGES_H
#define ITR_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>

struct itr_privilege_needs {
	/* Detach XDP/TC on exit (tc filters are removed over rtnetlink). */
	bool net_admin;
	/* A listener on a port below 1024. */
	bool bind_low_port;
	/* Pinned maps and links under this directory become the user's, so
	 * that /metrics can open them and an exit can unpin them. NULL: none. */
	const char *pin_root;
	/* A directory the user must create files in after the drop (the admin
	 * socket's): made if missing (0755) and given to the user. NULL: none. */
	const char *owned_dir;
};

/* Become user (a name or a numeric uid; its primary group, no supplementary
 * groups) and keep exactly the capabilities needs asks for, in the
 * permitted and effective sets of the calling thread (call it before any
 * other thread exists: new threads inherit it), with every other one out
 * of the bounding set and no ambient ones. 0, or -1 with err filled
 * (nothing is half done that matters: the caller exits). */
int itr_drop_privileges(const char *user, const struct itr_privilege_needs *needs, char *err,
                        size_t errlen);

/* The calling thread's effective capabilities as text ("cap_net_admin=ep"),
 * for the log. Static buffer. */
const char *itr_privileges_describe(void);

#endif
