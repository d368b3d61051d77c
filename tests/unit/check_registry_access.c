/*
 * check_registry_access.c - what .metrics shows to whom: a partition's
 * series are rendered for a caller with read permission on it and search
 * permission on its topic, by the kernel's rule (owner class, else group
 * class with supplementary groups, else others; uid 0 sees all), and the
 * daemon-wide series for everyone.
 */
#include <errno.h>
#include <limits.h>

#include "testutil.h"
#include "registry.h"
#include "registry_metrics.h"

static struct registry *reg;
static char dir[PATH_MAX];
static int dirfd_;

static const struct registry_hooks no_hooks;

static struct node *topic(const char *name, mode_t mode, uid_t uid, gid_t gid)
{
	struct node *t;

	ck_assert_int_eq(registry_mkdir(reg, registry_node(reg, 1), name, mode,
					uid, gid, &t),
			 0);
	return t;
}

static void part(struct node *t, const char *name, mode_t mode, uid_t uid,
		 gid_t gid)
{
	struct node *p;

	ck_assert_int_eq(registry_create(reg, t, name, mode, uid, gid, &p), 0);
}

static void setup(void)
{
	struct config cfg;
	struct node *t;

	dirfd_ = test_tmpdir(dir);
	config_defaults(&cfg);
	cfg.set = 0;
	ck_assert_int_eq(registry_open(dir, &cfg, &no_hooks, &reg), 0);
	t = topic("priv", 0700, 1001, 1001);
	part(t, "0", 0644, 1001, 1001);
	t = topic("shared", 0755, 0, 0);
	part(t, "open", 0644, 0, 0);
	part(t, "secret", 0600, 1001, 1001);
	part(t, "grp", 0640, 0, 2000);
	/* The owner's class decides for the owner, even when the group's
	 * or the others' bits would allow more. */
	part(t, "notowner", 0044, 1001, 1001);
	/* Readable but not searchable by others: its partitions are not. */
	t = topic("nosearch", 0744, 0, 0);
	part(t, "0", 0644, 0, 0);
}

static void teardown(void)
{
	ck_assert_int_eq(registry_close(reg), 0);
	test_rmtree(dirfd_, dir);
}

/* Whether cred's .metrics shows the series of tp ("topic/partition");
 * checks the daemon-wide series on the way. */
static int shows(const struct registry_cred *cred, const char *tp)
{
	struct prom_buf out = {NULL, 0, 0};
	struct prom_daemon d;
	char label[600];
	const char *slash = strchr(tp, '/');
	int found;

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(registry_metrics_for(reg, cred, &d, &out), 0);
	snprintf(label, sizeof(label), "{topic=\"%.*s\",partition=\"%s\"}",
		 (int)(slash - tp), tp, slash + 1);
	found = strstr(out.buf, label) != NULL;
	/* The daemon-wide series count everything, for everyone. */
	ck_assert_ptr_nonnull(strstr(out.buf, "\nfluxfs_topics 3\n"));
	ck_assert_ptr_nonnull(strstr(out.buf, "\nfluxfs_open_partitions 6\n"));
	free(out.buf);
	return found;
}

static const char *const all[] = {"priv/0",	     "shared/open",
				  "shared/secret",   "shared/grp",
				  "shared/notowner", "nosearch/0"};

/* expect: one character per entry of all[], '1' shown, '0' hidden. */
static void check_view(const struct registry_cred *cred, const char *expect)
{
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		ck_assert_msg(shows(cred, all[i]) == (expect[i] == '1'),
			      "uid %d: %s should be %s",
			      cred ? (int)cred->uid : -1, all[i],
			      expect[i] == '1' ? "shown" : "hidden");
}

START_TEST(test_everyone_sees_what_it_may_read)
{
	const gid_t g2000[] = {2000};
	const struct registry_cred root = {0, 0, NULL, 0};
	const struct registry_cred a = {1001, 1001, NULL, 0};
	const struct registry_cred b = {1002, 1002, NULL, 0};
	const struct registry_cred c = {1003, 1003, g2000, 1};
	const struct registry_cred c_primary = {1003, 2000, NULL, 0};

	check_view(NULL, "111111");
	check_view(&root, "111111");
	check_view(&a, "111000");
	check_view(&b, "010010");
	check_view(&c, "010110");
	check_view(&c_primary, "010110");
}
END_TEST

START_TEST(test_unfiltered_is_registry_metrics)
{
	struct prom_buf x = {NULL, 0, 0}, y = {NULL, 0, 0};
	struct prom_daemon d;
	const char *p, *q;

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(registry_metrics(reg, &d, &x), 0);
	ck_assert_int_eq(registry_metrics_for(reg, NULL, &d, &y), 0);
	/* The time counters move between the two: compare the labels. */
	for (p = x.buf, q = y.buf;
	     (p = strstr(p, "{topic=")) && (q = strstr(q, "{topic=")); p++, q++)
		ck_assert_int_eq(strncmp(p, q, strcspn(p, "}")), 0);
	ck_assert_ptr_null(p ? strstr(p, "{topic=") : NULL);
	free(x.buf);
	free(y.buf);
}
END_TEST

static Suite *access_suite(void)
{
	Suite *s = suite_create("registry_access");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_everyone_sees_what_it_may_read);
	tcase_add_test(tc, test_unfiltered_is_registry_metrics);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(access_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
