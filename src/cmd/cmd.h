/* The subcommands of pushmaild; each returns the process exit status. */
#ifndef CMD_CMD_H
#define CMD_CMD_H

#include "cmd/settings.h"

int cmd_serve(struct settings *s);
int cmd_user(struct settings *s, int argc, char **argv);
int cmd_deliver(struct settings *s, int argc, char **argv);

/* Creates the data directory (mode 0700) if missing; 0 or -1 with err. */
int cmd_mkdir_data_dir(const struct settings *s, char *err, size_t errlen);

/*
 * Takes the data directory's exclusive lock (creating the directory).
 * With wait == 0, returns -1 at once when another process holds it.
 * Returns the lock's descriptor, held until exit, or -1 with err.
 */
int cmd_lock_data_dir(const struct settings *s, int wait, char *err,
    size_t errlen);

#endif
