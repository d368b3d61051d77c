/*
 * check_registry_produce.c - a topic's keyed-producing settings in the
 * registry: partitions= creates the missing partitions and is stored in
 * produce.conf; lowering it is EINVAL; raising it over keyed data logs a
 * warning; the partitions by number are pinned, with only canonical
 * names ("0", "7", not "07") counted and a gap ending the count when the
 * setting is unset; a removed partition is created again; the separator
 * is one byte or none; everything survives a reopen; a bad produce.conf
 * is reported and ignored.
 */
#include <errno.h>
#include <limits.h>

#include "testutil.h"
#include "layout.h"
#include "registry.h"
#include "registry_fixture.h"

/* Open the data directory with its log lines in buf. */
static struct registry *open_logged(char *buf, size_t size)
{
	struct registry *reg = NULL;

	test_log_begin(logpath, &saved_stderr);
	ck_assert_int_eq(registry_open(data, &defaults, &no_hooks, &reg), 0);
	test_log_end(logpath, &saved_stderr, buf, size);
	return reg;
}

/* Set key of t to val with the log lines in buf; the result. */
static int set_logged(struct registry *reg, struct node *t, int key,
		      const char *val, size_t len, char *buf, size_t size)
{
	int ret;

	test_log_begin(logpath, &saved_stderr);
	ret = registry_produce_set(reg, t, key, val, len, 0, 0);
	test_log_end(logpath, &saved_stderr, buf, size);
	return ret;
}

/* The partitions registry_produce_partitions() gives: their count, and
 * whether every slot is filled; unpins them. */
static uint32_t partitions(struct registry *reg, struct node *t, int *all)
{
	struct node **slot;
	uint32_t n, i;

	ck_assert_int_eq(registry_produce_partitions(reg, t, 0, 0, &slot, &n),
			 0);
	*all = 1;
	for (i = 0; i < n; i++) {
		if (!slot[i]) {
			*all = 0;
			continue;
		}
		ck_assert_uint_eq(strtoul(slot[i]->name, NULL, 10), i);
		registry_unpin(reg, slot[i]);
	}
	free(slot);
	return n;
}

static struct node *child(struct node *t, const char *name)
{
	struct node *c;

	for (c = t->children; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

START_TEST(test_partitions)
{
	struct registry *reg;
	struct node *t, *p;
	char log[4096], buf[64], text[256];
	int all, len, fd;
	ssize_t n;

	reg = open_logged(log, sizeof(log));
	ck_assert_int_eq(
		registry_mkdir(reg, registry_node(reg, 1), "t", 0755, 0, 0, &t),
		0);
	/* Unset and no partitions: none. */
	ck_assert_uint_eq(partitions(reg, t, &all), 0);
	len = registry_produce_get(reg, t, PRODUCE_PARTITIONS, buf,
				   sizeof(buf));
	ck_assert_int_eq(len, 1);
	ck_assert_int_eq(buf[0], '0');
	/* Unset: a gap ends the count, non-canonical names do not count. */
	ck_assert_int_eq(registry_create(reg, t, "0", 0644, 0, 0, &p), 0);
	ck_assert_int_eq(registry_create(reg, t, "1", 0644, 0, 0, &p), 0);
	ck_assert_int_eq(registry_create(reg, t, "02", 0644, 0, 0, &p), 0);
	ck_assert_int_eq(registry_create(reg, t, "3", 0644, 0, 0, &p), 0);
	ck_assert_uint_eq(partitions(reg, t, &all), 2);
	ck_assert_int_eq(all, 1);
	/* Lowering below the count in use. */
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_PARTITIONS, "1", 1, log,
				    sizeof(log)),
			 -EINVAL);
	ck_assert_msg(strstr(log, "refused partitions=1 on 't'"), "%s", log);
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_PARTITIONS, "x", 1, log,
				    sizeof(log)),
			 -EINVAL);
	ck_assert_msg(strstr(log, "refused partitions=x"), "%s", log);
	/* Raising with no data: no warning; the missing ones are made. */
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_PARTITIONS, "6\n", 2, log,
				    sizeof(log)),
			 0);
	ck_assert_ptr_null(strstr(log, "raised"));
	ck_assert_ptr_nonnull(child(t, "2"));
	ck_assert_ptr_nonnull(child(t, "5"));
	ck_assert_ptr_null(child(t, "6"));
	ck_assert_uint_eq(partitions(reg, t, &all), 6);
	ck_assert_int_eq(all, 1);
	/* Stored in produce.conf. */
	fd = openat(dirfd_, "data/t/" LAYOUT_TOPIC_PRODUCE, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	ck_assert_int_gt(n, 0);
	text[n] = '\0';
	ck_assert_str_eq(text, "partitions=6\n");
	/* Raising over data that may be keyed: a warning. */
	p = child(t, "4");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_ge(partition_append(p->part, "k\tv\n", 4, 1, 1,
					  PARTITION_ANY_END, NULL, NULL),
			 0);
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_PARTITIONS, "8", 1, log,
				    sizeof(log)),
			 0);
	ck_assert_msg(strstr(log, "partitions of 't' raised from 6 to 8"), "%s",
		      log);
	/* A removed partition is created again by the next lookup. */
	ck_assert_int_eq(registry_unlink(reg, t, "7"), 0);
	ck_assert_ptr_null(child(t, "7"));
	ck_assert_uint_eq(partitions(reg, t, &all), 8);
	ck_assert_int_eq(all, 1);
	ck_assert_ptr_nonnull(child(t, "7"));
	ck_assert_int_eq(registry_close(reg), 0);

	/* Kept across a reopen; unset goes back to those that exist. */
	reg = open_logged(log, sizeof(log));
	t = child(registry_node(reg, 1), "t");
	ck_assert_ptr_nonnull(t);
	len = registry_produce_get(reg, t, PRODUCE_PARTITIONS, buf,
				   sizeof(buf));
	ck_assert_int_eq(len, 1);
	ck_assert_int_eq(buf[0], '8');
	ck_assert_int_eq(registry_produce_unset(reg, t, PRODUCE_PARTITIONS), 0);
	ck_assert_int_eq(registry_produce_unset(reg, t, PRODUCE_PARTITIONS),
			 -ENODATA);
	ck_assert_uint_eq(partitions(reg, t, &all), 8);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

START_TEST(test_separator)
{
	struct registry *reg;
	struct node *t;
	struct produce_conf c;
	uint64_t max;
	char log[4096], buf[8];

	reg = open_logged(log, sizeof(log));
	ck_assert_int_eq(
		registry_mkdir(reg, registry_node(reg, 1), "t", 0755, 0, 0, &t),
		0);
	ck_assert_int_eq(registry_produce_get(reg, t, PRODUCE_KEY_SEPARATOR,
					      buf, sizeof(buf)),
			 1);
	ck_assert_int_eq(buf[0], '\t');
	ck_assert_int_eq(registry_produce_unset(reg, t, PRODUCE_KEY_SEPARATOR),
			 -ENODATA);
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_KEY_SEPARATOR, ",;", 2, log,
				    sizeof(log)),
			 -EINVAL);
	ck_assert_msg(strstr(log, "refused key_separator on 't'"), "%s", log);
	ck_assert_int_eq(set_logged(reg, t, PRODUCE_KEY_SEPARATOR, "", 0, log,
				    sizeof(log)),
			 0);
	ck_assert_int_eq(registry_produce_get(reg, t, PRODUCE_KEY_SEPARATOR,
					      buf, sizeof(buf)),
			 0);
	ck_assert_int_eq(registry_close(reg), 0);

	reg = open_logged(log, sizeof(log));
	t = child(registry_node(reg, 1), "t");
	registry_produce_conf(reg, t, &c, &max);
	ck_assert_int_eq(c.separator, PRODUCE_NO_SEPARATOR);
	ck_assert_uint_eq(max, defaults.max_message_bytes);
	ck_assert_int_eq(registry_produce_set(reg, t, PRODUCE_KEY_SEPARATOR,
					      ":", 1, 0, 0),
			 0);
	registry_produce_conf(reg, t, &c, &max);
	ck_assert_int_eq(c.separator, ':');
	ck_assert_int_eq(registry_close(reg), 0);

	/* A produce.conf that does not parse: reported, defaults kept. */
	{
		char path[PATH_MAX + 32];
		FILE *f;

		snprintf(path, sizeof(path), "%s/t/" LAYOUT_TOPIC_PRODUCE,
			 data);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs("partitions=lots\n", f);
		fclose(f);
	}
	reg = open_logged(log, sizeof(log));
	ck_assert_msg(strstr(log, "bad 't/" LAYOUT_TOPIC_PRODUCE "'"), "%s",
		      log);
	t = child(registry_node(reg, 1), "t");
	registry_produce_conf(reg, t, &c, &max);
	ck_assert_int_eq(c.separator, '\t');
	ck_assert_uint_eq(c.partitions, 0);
	ck_assert_int_eq(registry_close(reg), 0);
}
END_TEST

static Suite *registry_produce_suite(void)
{
	Suite *s = suite_create("registry_produce");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_partitions);
	tcase_add_test(tc, test_separator);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(registry_produce_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
