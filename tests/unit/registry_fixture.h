/*
 * registry_fixture.h - the fixture the registry's unit tests share: a
 * fresh temporary directory per test holding the data directory (made by
 * registry_open) and a file for captured log lines, the built-in
 * configuration, no hooks, and the I/O table reset after each test.
 * Include it once, after testutil.h, and add setup/teardown as a checked
 * fixture.
 */
#ifndef FLUXFS_REGISTRY_FIXTURE_H
#define FLUXFS_REGISTRY_FIXTURE_H

#include <limits.h>

#include "io.h"
#include "registry.h"

static const struct registry_hooks no_hooks;
static struct config defaults;
static char dir[PATH_MAX], data[PATH_MAX + 8], logpath[PATH_MAX + 8];
static int dirfd_;
static int saved_stderr = -1;

static void setup(void)
{
	dirfd_ = test_tmpdir(dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	config_defaults(&defaults);
}

static void teardown(void)
{
	io_ops_set(NULL);
	test_rmtree(dirfd_, dir);
}

#endif
