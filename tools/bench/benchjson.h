/* benchjson.h - append benchmark records to $BUILD/bench.json.
 *
 * Every benchmark under tools/bench/ reports through this header so that
 * tools/bench/run.sh can print one table: the file is a JSON list of
 * {"name","value","unit","reference","ratio"} objects, where reference is a
 * figure measured in the same run and ratio = value / reference. The file
 * is created if missing and extended otherwise (jansson does the JSON).
 */
#ifndef ITR_BENCHJSON_H
#define ITR_BENCHJSON_H

#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>

static inline const char *benchjson_path(char *buf, size_t size)
{
	const char *build = getenv("BUILD");
	snprintf(buf, size, "%s/bench.json", build && *build ? build : "build");
	return buf;
}

/* Returns 0 on success, -1 (with a message on stderr) otherwise. */
static inline int benchjson_append(const char *name, double value, const char *unit,
                                   double reference)
{
	char path[4096];
	json_error_t err;
	benchjson_path(path, sizeof(path));

	json_t *list = json_load_file(path, 0, &err);
	if (!list || !json_is_array(list)) {
		json_decref(list);
		list = json_array();
	}
	json_t *rec =
	    json_pack("{s:s, s:f, s:s, s:f, s:f}", "name", name, "value", value, "unit", unit,
	              "reference", reference, "ratio", reference != 0 ? value / reference : 0.0);
	if (!rec || json_array_append_new(list, rec) != 0 ||
	    json_dump_file(list, path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0) {
		fprintf(stderr, "benchjson: cannot write %s\n", path);
		json_decref(list);
		return -1;
	}
	json_decref(list);
	return 0;
}

#endif /* ITR_BENCHJSON_H */
