/*
 * ctl_unescape.c - fluxctl unescape: the values of records imported from
 * Kafka back as they were, from the one-line form the importer stores
 * (layout_value_escape(): a value that held newlines, or began with the
 * record separator byte, is marked with that byte and escaped).  Lines
 * without the mark pass unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
