/*
 * ctl_mirror.c - fluxctl's Kafka mirror commands.  unescape: the values
 * of records imported from Kafka back as they were, from the one-line
 * form the importer stores (layout_value_escape(): a value that held
 * newlines, or began with the record separator byte, is marked with that
 * byte and escaped); lines without the mark pass unchanged.  mirror-wait:
 * wait until every mirrored partition below a mount path has caught up,
 * through the daemon's user.fluxfs.mirror_wait query.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "ctl.h"
#include "layout.h"

/* Unescape every line of f onto stdout; 0, or 2 on a read error. */
static int unescape_stream(FILE *f, const char *name)
{
	char *line = NULL;
	size_t cap = 0, len;
	ssize_t got;
	int nl;

	while ((got = getline(&line, &cap, f)) > 0) {
		len = (size_t)got;
		nl = line[len - 1] == '\n';
		len = layout_value_unescape(line, len - (size_t)nl);
		fwrite(line, 1, len, stdout);
		if (nl)
			putchar('\n');
	}
	free(line);
	if (ferror(f)) {
		fprintf(stderr, "fluxctl unescape: %s: read error\n", name);
		return 2;
	}
	return 0;
}

int ctl_unescape(int argc, char **argv)
{
	FILE *f;
	int i, ret = 0;

	if (argc < 2)
		return unescape_stream(stdin, "standard input");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-"))
			f = stdin;
		else if (!(f = fopen(argv[i], "re")))
			return ctl_usage("unescape", "cannot open '%s'", argv[i]);
		ret = unescape_stream(f, argv[i]);
		if (f != stdin)
			fclose(f);
		if (ret)
			break;
	}
	if (fflush(stdout) != 0)
		ret = 2;
	return ret;
}

/* Wait for one partition; partitions that are not mirrored pass. */
static int wait_one(void *arg, const struct ctl_target *t, const char *topic,
		    const char *part, const char *path)
{
	char buf[64];
	ssize_t n = getxattr(path, CTL_XATTR "mirror_wait", buf,
			     sizeof(buf) - 1);

	if (n < 0 && errno == ENODATA)
		return 0;
	if (n < 0) {
		ctl_err("%s/%s: %s", topic, part, strerror(errno));
		return CTL_FOUND;
	}
	buf[n] = '\0';
	printf("%s/%s %s\n", topic, part, buf);
	(*(int *)arg)++;
	return 0;
}

int ctl_mirror_wait(int argc, char **argv)
{
	struct ctl_target t;
	int ret, waited = 0;

	ret = ctl_one_operand(argc, argv, "PATH", &t);
	if (ret >= 0)
		return ret;
	if (!ctl_is_mount(t.kind))
		return ctl_usage("mirror-wait", "'%s' is not on a fluxfs mount",
				 t.path);
	ret = ctl_each_partition(&t, wait_one, &waited);
	if (ret == 0 && waited == 0) {
		ctl_err("no mirrored partition below '%s'", t.path);
		return CTL_FOUND;
	}
	return ret;
}
