/* privileges.c - drop to a dedicated user with a trimmed capability set
 * (see privileges.h), with libcap.
 *
 * The order matters: the bounding set is trimmed while CAP_SETPCAP is still
 * effective; PR_SET_KEEPCAPS carries the permitted set across setuid(); the
 * effective set is then rebuilt from what is kept.
 */
#include "privileges.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int resolve_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(user, &end, 10);
		if (*user && !*end && !errno && v < UINT_MAX)
			pw = getpwuid((uid_t)v);
	}
	if (!pw) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "--user %s: is root; name a dedicated user", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* The pin directory and what is pinned in it (one level: maps, links). */
static int chown_pins(const char *root, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (chown(root, uid, gid) < 0) {
		snprintf(err, errlen, "chown %s: %s", root, strerror(errno));
		return -1;
	}
	DIR *d = opendir(root);
	if (!d) {
		snprintf(err, errlen, "cannot open %s: %s", root, strerror(errno));
		return -1;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (chown(path, uid, gid) < 0) {
			snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

int itr_drop_privileges(const char *user, const struct itr_privilege_needs *needs, char *err,
                        size_t errlen)
{
	uid_t uid;
	gid_t gid;
	if (resolve_user(user, &uid, &gid, err, errlen) < 0)
		return -1;
	if (needs->pin_root && getuid() == 0 &&
	    chown_pins(needs->pin_root, uid, gid, err, errlen) < 0)
		return -1;
	/* Only a directory made here is given away: an existing one (/run
	 * itself, say) must already let the user in. */
	if (needs->owned_dir && getuid() == 0 && mkdir(needs->owned_dir, 0755) == 0 &&
	    chown(needs->owned_dir, uid, gid) < 0) {
		snprintf(err, errlen, "chown %s: %s", needs->owned_dir, strerror(errno));
		return -1;
	}

	cap_value_t keep[2];
	int nkeep = 0;
	if (needs->net_admin)
		keep[nkeep++] = CAP_NET_ADMIN;
	if (needs->bind_low_port)
		keep[nkeep++] = CAP_NET_BIND_SERVICE;

	/* Out of the bounding set: everything not kept. That needs CAP_SETPCAP,
	 * which root has; a daemon started as the user already (systemd's
	 * User= with AmbientCapabilities=) has not, and its unit bounds the set
	 * instead. */
	bool started_as_user = getuid() == uid && geteuid() == uid;
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		bool kept = false;
		for (int i = 0; i < nkeep; i++)
			kept |= keep[i] == c;
		if (kept || !CAP_IS_SUPPORTED(c) || cap_drop_bound(c) == 0 || errno == EINVAL)
			continue;
		if (started_as_user && errno == EPERM)
			break;
		snprintf(err, errlen, "dropping capability %d from the bounding set: %s", (int)c,
		         strerror(errno));
		return -1;
	}
	cap_reset_ambient();
	if (!started_as_user && (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(1, &gid) < 0 ||
	                         setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)) {
		snprintf(err, errlen, "becoming %s (uid %u gid %u): %s", user, (unsigned)uid,
		         (unsigned)gid, strerror(errno));
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	cap_t caps = cap_init(); /* all clear */
	if (!caps ||
	    (nkeep && (cap_set_flag(caps, CAP_PERMITTED, nkeep, keep, CAP_SET) < 0 ||
	               cap_set_flag(caps, CAP_EFFECTIVE, nkeep, keep, CAP_SET) < 0)) ||
	    cap_set_proc(caps) < 0) {
		snprintf(err, errlen, "setting capabilities: %s", strerror(errno));
		cap_free(caps);
		return -1;
	}
	cap_free(caps);
	/* No way back: setuid(0) must fail now. */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "could become root again after dropping privileges");
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}

const char *itr_privileges_describe(void)
{
	static char text[256];
	cap_t caps = cap_get_proc();
	char *t = caps ? cap_to_text(caps, NULL) : NULL;
	snprintf(text, sizeof(text), "%s", t && *t ? t : "none");
	cap_free(t);
	cap_free(caps);
	return text;
}
