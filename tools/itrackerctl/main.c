/* main.c - itrackerctl, the operator's command line: global options, the
 * subcommand table, help and exit codes. Each subcommand lives in its own
 * file (cmd_*.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h" /* ITR_ADMIN_SOCKET_DEFAULT */
#include "ctl.h"
#include "itracker_maps.h"

static const char usage_text[] =
    "usage: itrackerctl [--pin-root DIR] [--server URL] [--json] [--timeout S]\n"
    "                   [--admin-socket PATH] [--admin-token-file FILE] COMMAND [ARGS]\n"
    "\n"
    "Inspect and steer itracker. Data plane commands read the pinned maps\n"
    "directly and work while itrackerd is stopped.\n"
    "\n"
    "commands:\n"
    "  status                  programs attached, pinned maps, network map, daemon\n"
    "  stats [--watch N]       packets and bytes by class x BitTorrent kind\n"
    "  matrix [--map FILE]     PID x PID traffic matrix, top pairs by bytes\n"
    "  netinfo ADDR            network position of an address (asks the daemon)\n"
    "  rank CLIENT PEER...     rank candidate peers for a client (asks the daemon)\n"
    "  map check FILE          validate a network map file\n"
    "  map diff OLD NEW        what changes between two network map files\n"
    "  map reload              make the daemon reload its network map\n"
    "  policy                  price per inter-AS link, external budget per AS\n"
    "  classify FILE.pcap...   run captures through the XDP program, list flows\n"
    "  metrics [--listen A:P]  print (or serve) the Prometheus metrics of the pins\n"
    "\n"
    "global options:\n"
    "  --pin-root DIR   pinned maps and links (default " ITR_PIN_ROOT_DEFAULT ")\n"
    "  --server URL     the daemon's HTTP listener (default " CTL_SERVER_DEFAULT ")\n"
    "  --admin-socket PATH  the daemon's admin API, used by map reload when it\n"
    "                   exists (default " ITR_ADMIN_SOCKET_DEFAULT ")\n"
    "  --admin-token-file FILE  send the token in FILE to the admin API\n"
    "  --json           machine-readable output\n"
    "  --timeout S      give up on the daemon after S seconds: connect, send and\n"
    "                   answer together (default 10; status: 3)\n"
    "  -h, --help       this text; COMMAND --help for a command's own\n"
    "\n"
    "exit codes: 0 ok, 1 runtime error, 2 usage error, 3 daemon unreachable\n";

static void verror(const char *fmt, va_list ap)
{
	fputs("itrackerctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ctl_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
}

int ctl_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	fputs(usage, stderr);
	return CTL_EXIT_USAGE;
}

/* Whether argv (after the subcommand) asks for help; prints usage if so. */
static bool ctl_wants_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return true;
		}
	}
	return false;
}

bool ctl_options(int argc, char **argv, const char *usage, const struct ctl_opt *opts, int *first,
                 int *status)
{
	*status = CTL_EXIT_OK;
	if (ctl_wants_help(argc, argv, usage))
		return false;
	struct option longopts[16];
	size_t n = 0;
	for (; opts[n].name; n++) {
		if (n + 1 == sizeof(longopts) / sizeof(longopts[0]))
			abort(); /* a command with more options than this table holds */
		/* getopt_long returns val: the option's index + 1 (never '?') */
		longopts[n] = (struct option){
		    opts[n].name, opts[n].kind == CTL_OPT_FLAG ? no_argument : required_argument,
		    NULL, (int)n + 1};
	}
	longopts[n] = (struct option){NULL, 0, NULL, 0};
	optind = 0; /* reinitialise getopt: argv[0] is the subcommand */
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c < 1 || c > (int)n) {
			*status = ctl_usage_error(usage, "bad option");
			return false;
		}
		const struct ctl_opt *o = &opts[c - 1];
		if (o->kind == CTL_OPT_FLAG) {
			*(bool *)o->target = true;
		} else if (o->kind == CTL_OPT_TEXT) {
			*(const char **)o->target = optarg;
		} else {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v < o->min) {
				*status =
				    o->min
				        ? ctl_usage_error(usage, "--%s wants a whole number >= %lu",
				                          o->name, o->min)
				        : ctl_usage_error(usage, "--%s wants a whole number",
				                          o->name);
				return false;
			}
			*(unsigned long *)o->target = v;
		}
	}
	*first = optind;
	return true;
}

static const struct {
	const char *name;
	int (*run)(const struct ctl_global *g, int argc, char **argv);
} commands[] = {
    {"status", ctl_cmd_status},     {"stats", ctl_cmd_stats},     {"matrix", ctl_cmd_matrix},
    {"netinfo", ctl_cmd_netinfo},   {"rank", ctl_cmd_rank},       {"map", ctl_cmd_map},
    {"classify", ctl_cmd_classify}, {"metrics", ctl_cmd_metrics}, {"policy", ctl_cmd_policy},
};

int main(int argc, char **argv)
{
	struct ctl_global g = {
	    .pin_root = ITR_PIN_ROOT_DEFAULT,
	    .server = CTL_SERVER_DEFAULT,
	    .admin_socket = ITR_ADMIN_SOCKET_DEFAULT,
	    .json = false,
	};
	static const struct option opts[] = {
	    {"pin-root", required_argument, NULL, 'p'},
	    {"server", required_argument, NULL, 's'},
	    {"admin-socket", required_argument, NULL, 'a'},
	    {"admin-token-file", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	/* '+': stop at the subcommand; its options are its own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			g.pin_root = optarg;
			break;
		case 's':
			g.server = optarg;
			break;
		case 'a':
			g.admin_socket = optarg;
			break;
		case 'k':
			g.admin_token_file = optarg;
			break;
		case 'j':
			g.json = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 3600)
				return ctl_usage_error(usage_text,
				                       "--timeout '%s': expected 1 to 3600 seconds",
				                       optarg);
			g.timeout_s = (int)v;
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return CTL_EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return ctl_usage_error(usage_text, "no command given");
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;
			optind = 0; /* reinitialise getopt for the subcommand */
			return commands[i].run(&g, sub_argc, sub_argv);
		}
	}
	return ctl_usage_error(usage_text, "unknown command '%s'", name);
}
