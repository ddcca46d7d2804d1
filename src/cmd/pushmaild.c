/*
 * pushmaild: the server's main() and its subcommand dispatch (serve, user,
 * deliver, check-config).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "cmd/cmd.h"
#include "net/tls.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: pushmaild [-c config] [-d data_dir] [command]\n"
	    "commands:\n"
	    "  serve                      run the server (the default)\n"
	    "  check-config               report errors in the config file\n"
	    "  user add|passwd NAME       set a password (stdin or prompt)\n"
	    "  user del NAME              remove a user (mail is kept)\n"
	    "  user list                  list users\n"
	    "  deliver [-f SENDER] RCPT...  deliver a message from stdin\n");
}

int
cmd_mkdir_data_dir(const struct settings *s, char *err, size_t errlen)
{
	if (mkdir(s->data_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", s->data_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
cmd_lock_data_dir(const struct settings *s, int wait, char *err, size_t errlen)
{
	char path[4096];
	int fd;

	if (cmd_mkdir_data_dir(s, err, errlen) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/pushmaild.lock", s->data_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		snprintf(err, errlen, "%s: %s", path,
		    errno == EWOULDBLOCK ? "another pushmaild owns this data "
		                           "directory" :
		                           strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * check-config: the file has parsed; now the users and aliases files parse
 * and any certificate that exists loads with its key.
 */
static int
check_config(const struct settings *s)
{
	struct userdb *db;
	char err[1024];

	db = userdb_open(s->users_file, s->aliases_file, s->postmaster,
	    s->default_quota, err, sizeof(err));
	if (db == NULL && access(s->users_file, F_OK) == 0) {
		fprintf(stderr, "pushmaild: %s\n", err);
		return 78;
	}
	userdb_free(&db);
	if (access(s->tls_cert, F_OK) == 0) {
		SSL_CTX *ctx = tls_server_ctx_new(s->tls_cert, s->tls_key, err,
		    sizeof(err));

		if (ctx == NULL) {
			fprintf(stderr, "pushmaild: %s\n", err);
			return 78;
		}
		SSL_CTX_free(ctx);
	}
	printf("%s: ok\n", s->config_path ? s->config_path : "(defaults)");
	return 0;
}

/*
 * The server runs without glibc's per-thread malloc cache. With it, a chunk
 * that a worker allocated and the loop thread freed (a row, a name) lands
 * in the loop's cache and is handed out again for something the loop keeps
 * for hours, so the worker's arena stays pinned by a few bytes per page:
 * at 10,000 idle sessions that was a fifth of their memory. The cache can
 * only be turned off before the process starts, so serve runs itself again
 * once with the tunable set; a failed exec goes on with the cache.
 */
static void
serve_reexec(char **argv)
{
#ifdef __GLIBC__
	static const char tunable[] = "glibc.malloc.tcache_count=0";
	const char *old = getenv("GLIBC_TUNABLES");
	char *val;

	if (old != NULL && strstr(old, "glibc.malloc.tcache_count") != NULL)
		return;
	val = old != NULL && *old != '\0' ? xasprintf("%s:%s", old, tunable) :
	                                    xstrdup(tunable);
	if (setenv("GLIBC_TUNABLES", val, 1) == 0)
		execv("/proc/self/exe", argv);
	free(val);
#else
	(void)argv;
#endif
}

int
main(int argc, char **argv)
{
	const char *config = NULL, *data_dir = NULL, *command = "serve";
	struct settings s;
	char err[1024];
	int opt, r;

	while ((opt = getopt(argc, argv, "+c:d:h")) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 64;
		}
	}
	if (optind < argc)
		command = argv[optind++];
	if (strcmp(command, "serve") == 0)
		serve_reexec(argv);
	if (settings_load(&s, config, data_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushmaild: %s\n", err);
		settings_deinit(&s);
		return 78;
	}
	umask(077);
	log_init(s.log_level, 2);
	if (strcmp(command, "serve") == 0)
		r = cmd_serve(&s);
	else if (strcmp(command, "check-config") == 0)
		r = check_config(&s);
	else if (strcmp(command, "user") == 0)
		r = cmd_user(&s, argc - optind, argv + optind);
	else if (strcmp(command, "deliver") == 0)
		r = cmd_deliver(&s, argc - optind + 1, argv + optind - 1);
	else {
		usage();
		r = 64;
	}
	settings_deinit(&s);
	return r;
}
