/* json_merge_patch.h - JSON Merge Patch (RFC 7396): compute the patch that
 * turns one document into another, and apply a patch. ALTO incremental
 * updates (RFC 8895) carry network-map and cost-map changes this way.
 *
 * A merge patch cannot carry a null value in the target (null means
 * "remove"): ALTO maps hold none, and itr_merge_patch_diff refuses such a
 * target rather than send a patch that would lose it.
 */
#ifndef ITR_JSON_MERGE_PATCH_H
#define ITR_JSON_MERGE_PATCH_H

#include <jansson.h>

/* The patch p with apply(from, p) == to, as small as RFC 7396 allows (only
 * changed members; arrays and scalars are replaced whole). *out is NULL when
 * the documents are equal. Returns 0, -EINVAL if `to` holds a null, -ENOMEM. */
int itr_merge_patch_diff(const json_t *from, const json_t *to, json_t **out);

/* Apply patch to *target in place (RFC 7396 section 2). *target may be
 * replaced (a non-object patch replaces the whole document). Nesting deeper
 * than ITR_MERGE_PATCH_MAX_DEPTH is refused with -E2BIG and *target is then
 * left partly patched: callers apply to a copy. Returns 0 or -errno. */
#define ITR_MERGE_PATCH_MAX_DEPTH 64
int itr_merge_patch_apply(json_t **target, const json_t *patch);

#endif
