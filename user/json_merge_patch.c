/* json_merge_patch.c - RFC 7396 JSON Merge Patch: diff and apply, on
 * jansson values. Used by the ALTO update stream (server: diff the previous
 * and the new resource; follower: apply what the primary sent).
 */
#include "json_merge_patch.h"

#include <errno.h>
#include <stdbool.h>

static bool holds_null(const json_t *v, int depth)
{
	if (depth > ITR_MERGE_PATCH_MAX_DEPTH)
		return true; /* refuse, as apply would */
	if (json_is_null(v))
		return true;
	if (json_is_object(v)) {
		const char *key;
		json_t *member;
		json_object_foreach((json_t *)v, key, member)
		{
			if (holds_null(member, depth + 1))
				return true;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			if (holds_null(item, depth + 1))
				return true;
		}
	}
	return false;
}

static int diff(const json_t *from, const json_t *to, json_t **out)
{
	*out = NULL;
	if (!json_is_object(from) || !json_is_object(to)) {
		if (json_equal((json_t *)from, (json_t *)to))
			return 0;
		*out = json_deep_copy(to);
		return *out ? 0 : -ENOMEM;
	}

	json_t *patch = json_object();
	if (!patch)
		return -ENOMEM;
	const char *key;
	json_t *old_member, *new_member;
	json_object_foreach((json_t *)from, key, old_member)
	{
		if (!json_object_get(to, key) && json_object_set_new(patch, key, json_null()) < 0)
			goto nomem;
	}
	json_object_foreach((json_t *)to, key, new_member)
	{
		old_member = json_object_get(from, key);
		json_t *sub = NULL;
		if (!old_member) {
			sub = json_deep_copy(new_member);
			if (!sub)
				goto nomem;
		} else if (diff(old_member, new_member, &sub) < 0) {
			goto nomem;
		}
		if (sub && json_object_set_new(patch, key, sub) < 0)
			goto nomem;
	}
	if (json_object_size(patch) == 0) {
		json_decref(patch);
		return 0;
	}
	*out = patch;
	return 0;
nomem:
	json_decref(patch);
	return -ENOMEM;
}

int itr_merge_patch_diff(const json_t *from, const json_t *to, json_t **out)
{
	*out = NULL;
	if (!from || !to || holds_null(to, 0))
		return -EINVAL;
	return diff(from, to, out);
}

static int apply(json_t **target, const json_t *patch, int depth)
{
	if (depth > ITR_MERGE_PATCH_MAX_DEPTH)
		return -E2BIG;
	if (!json_is_object(patch)) {
		json_t *copy = json_deep_copy(patch);
		if (!copy)
			return -ENOMEM;
		json_decref(*target);
		*target = copy;
		return 0;
	}
	if (!json_is_object(*target)) {
		json_t *obj = json_object();
		if (!obj)
			return -ENOMEM;
		json_decref(*target);
		*target = obj;
	}
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)patch, key, value)
	{
		if (json_is_null(value)) {
			json_object_del(*target, key);
			continue;
		}
		json_t *member = json_object_get(*target, key);
		json_incref(member); /* apply may replace it: hold our own reference */
		int rc = apply(&member, value, depth + 1);
		if (rc < 0) {
			json_decref(member);
			return rc;
		}
		if (json_object_set_new(*target, key, member) < 0)
			return -ENOMEM;
	}
	return 0;
}

int itr_merge_patch_apply(json_t **target, const json_t *patch)
{
	if (!target || !patch)
		return -EINVAL;
	return apply(target, patch, 0);
}
