/*
 * mirror_none.c - the Kafka mirror's calls (mirror.h) in a daemon built
 * without librdkafka (./configure --without-kafka): kafka.* options and
 * the mirror attributes are refused, everything else does nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mirror.h"
#include "mirror_conf.h"

int mirror_option(const char *opt)
{
	if (strncmp(opt, MIRROR_OPT_PREFIX, strlen(MIRROR_OPT_PREFIX)) != 0)
		return 0;
	fprintf(stderr, "fluxfs: option '%s': this fluxfs was built without "
			"Kafka support\n", opt);
	return -EINVAL;
}

int mirror_configure(void)
{
	return 0;
}

int mirror_start(struct registry *reg,
		 void (*appended)(struct node *n, uint64_t end))
{
	return 0;
}

void mirror_stop(void)
{
}

int mirror_xattr_get(struct registry *reg, struct node *n, const char *name,
		     char *buf, size_t size)
{
	return -ENODATA;
}

int mirror_xattr_set(struct registry *reg, struct node *n, const char *name,
		     const char *value, size_t size)
{
	if (strncmp(name, "user.fluxfs.mirror_", 19) == 0)
		return -ENOTSUP;
	return -ENODATA;
}

int mirror_xattr_remove(struct registry *reg, struct node *n,
			const char *name)
{
	return -ENOSYS;
}

size_t mirror_xattr_list(struct node *n, char *buf, size_t size, size_t len)
{
	return len;
}

int mirror_writable(struct node *n)
{
	return 0;
}

int mirror_metrics(struct prom_buf *out,
		   int (*visible)(void *arg, struct node *topic,
				  struct node *n),
		   void *arg)
{
	return 0;
}
