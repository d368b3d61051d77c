/*
 * check_fdbudget.c - the descriptor budget's books: the least recently
 * used idle entry is the victim; pinned entries and entries the caller
 * cannot claim are never chosen; a pin that does not touch keeps the
 * order; when every open entry is pinned only the new request fails
 * (EMFILE) and nothing open is touched, while an idle entry that cannot
 * be claimed this moment is "ask again" (EAGAIN); costs that grow push the budget
 * over, and fdb_over names the victims; a failed open gives its
 * reservation back.  fdb_take_idle takes only an open unpinned entry;
 * fdb_could_open says whether an open could find room.
 */
#include <errno.h>

#include "testutil.h"
#include "fdbudget.h"

#define N 8

static struct fdbudget b;
static struct fdb_entry e[N];
static int unclaimable = -1; /* index claim refuses */

static int claim(struct fdb_entry *x, void *arg)
{
	(void)arg;
	return unclaimable < 0 || x != &e[unclaimable];
}

/* Open entry i at cost 3 on a fresh reservation, and unpin it. */
static void open_idle(int i)
{
	struct fdb_entry *v;

	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 0);
	ck_assert_ptr_null(v);
	fdb_opened(&b, &e[i], FDB_OPEN_COST, 3);
	fdb_unpin(&b, &e[i], 3);
}

static void setup(void)
{
	memset(e, 0, sizeof(e));
	unclaimable = -1;
	fdb_init(&b, 12); /* room for four partitions of cost 3 */
}

static void teardown(void)
{
	fdb_destroy(&b);
}

START_TEST(test_least_recently_used_goes_first)
{
	struct fdb_entry *v;
	int i;

	for (i = 0; i < 4; i++)
		open_idle(i);
	ck_assert_uint_eq(b.used, 12);
	ck_assert_uint_eq(b.open, 4);
	/* A touch makes 0 the newest: 1 is now the oldest. */
	ck_assert_int_eq(fdb_pin(&b, &e[0], 1), 0);
	fdb_unpin(&b, &e[0], 3);
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[1]);
	ck_assert_int_eq(e[1].open, 0);
	ck_assert_uint_eq(b.open, 3);
	/* Still counted until it is closed. */
	ck_assert_uint_eq(b.used, 12);
	fdb_closed(&b, v);
	ck_assert_uint_eq(b.used, 9);
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 0);
	fdb_opened(&b, &e[4], FDB_OPEN_COST, 3);
	fdb_unpin(&b, &e[4], 3);
	/* Room for the whole budget: 2, 3, 0, 4 go, in that order. */
	for (i = 0; i < 4; i++) {
		static const int order[4] = {2, 3, 0, 4};

		ck_assert_int_eq(fdb_make_room(&b, 12, claim, NULL, &v), 1);
		ck_assert_ptr_eq(v, &e[order[i]]);
		fdb_closed(&b, v);
	}
	ck_assert_int_eq(fdb_make_room(&b, 12, claim, NULL, &v), 0);
	ck_assert_uint_eq(b.used, 12);
	fdb_unreserve(&b, 12);
	ck_assert_uint_eq(b.used, 0);
	ck_assert_uint_eq(b.evictions, 5);
	/* A closed entry cannot be pinned: its owner must open it again. */
	ck_assert_int_eq(fdb_pin(&b, &e[2], 1), -ENOENT);
}
END_TEST

START_TEST(test_pinned_and_unclaimable_are_skipped)
{
	struct fdb_entry *v;
	int i;

	for (i = 0; i < 4; i++)
		open_idle(i);
	/* 0 is pinned (an open handle), 1 cannot be claimed (someone is
	 * opening or closing it): 2 goes. */
	ck_assert_int_eq(fdb_pin(&b, &e[0], 1), 0);
	/* Maintenance pins 3 without touching: the order stays. */
	ck_assert_int_eq(fdb_pin(&b, &e[3], 0), 0);
	fdb_unpin(&b, &e[3], 3);
	unclaimable = 1;
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[2]);
	fdb_closed(&b, v);
	ck_assert_int_eq(e[0].open, 1);
	ck_assert_int_eq(e[1].open, 1);
	ck_assert_int_eq(e[3].open, 1);
}
END_TEST

START_TEST(test_exhausted_by_pins_fails_only_the_new_request)
{
	struct fdb_entry *v = &e[7];
	int i;

	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(
			fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 0);
		fdb_opened(&b, &e[i], FDB_OPEN_COST, 3); /* stays pinned */
	}
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v),
			 -EMFILE);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(b.refusals, 1);
	/* Nothing open was touched. */
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(e[i].open, 1);
		ck_assert_uint_eq(e[i].pins, 1);
	}
	ck_assert_uint_eq(b.used, 12);
	ck_assert_uint_eq(b.open, 4);
	/* One handle closes: the next request gets that partition's room. */
	fdb_unpin(&b, &e[2], 3);
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[2]);
	fdb_closed(&b, v);
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 0);
	/* The open failed: the reservation comes back. */
	fdb_unreserve(&b, FDB_OPEN_COST);
	ck_assert_uint_eq(b.used, 9);
}
END_TEST

/* The only idle entry cannot be claimed this moment (it is being opened
 * or closed, or its lock is busy): "ask again", not a refusal; once it
 * can be, it goes. */
START_TEST(test_unclaimable_idle_is_eagain_not_emfile)
{
	struct fdb_entry *v = &e[7];
	int i;

	for (i = 0; i < 4; i++)
		open_idle(i);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(fdb_pin(&b, &e[i], 1), 0);
	unclaimable = 3;
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v),
			 -EAGAIN);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(b.refusals, 0);
	ck_assert_int_eq(e[3].open, 1);
	unclaimable = -1;
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[3]);
	fdb_closed(&b, v);
	/* Every entry pinned: refused. */
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v), 0);
	fdb_opened(&b, &e[3], FDB_OPEN_COST, 3);
	ck_assert_int_eq(fdb_make_room(&b, FDB_OPEN_COST, claim, NULL, &v),
			 -EMFILE);
	ck_assert_uint_eq(b.refusals, 1);
}
END_TEST

START_TEST(test_growth_goes_over_and_is_trimmed)
{
	struct fdb_entry *v;
	int i;

	for (i = 0; i < 3; i++)
		open_idle(i);
	ck_assert_int_eq(fdb_over(&b, claim, NULL, &v), 0);
	/* 2 rolled twice while pinned: 7 descriptors now. */
	ck_assert_int_eq(fdb_pin(&b, &e[2], 1), 0);
	fdb_unpin(&b, &e[2], 7);
	ck_assert_uint_eq(b.used, 13);
	ck_assert_int_eq(fdb_over(&b, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[0]);
	fdb_closed(&b, v);
	ck_assert_uint_eq(b.used, 10);
	ck_assert_int_eq(fdb_over(&b, claim, NULL, &v), 0);
	/* A partition too big for the room left evicts until it fits. */
	ck_assert_int_eq(fdb_make_room(&b, 9, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[1]);
	fdb_closed(&b, v);
	ck_assert_int_eq(fdb_make_room(&b, 9, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[2]);
	fdb_closed(&b, v);
	ck_assert_int_eq(fdb_make_room(&b, 9, claim, NULL, &v), 0);
	ck_assert_uint_eq(b.used, 9);
}
END_TEST

START_TEST(test_take_closes_whatever_its_pins)
{
	struct fdb_entry *v;

	open_idle(0);
	ck_assert_int_eq(fdb_pin(&b, &e[0], 1), 0);
	ck_assert_int_eq(fdb_take(&b, &e[0]), 1);
	ck_assert_int_eq(fdb_take(&b, &e[0]), 0);
	fdb_closed(&b, &e[0]);
	ck_assert_uint_eq(b.used, 0);
	ck_assert_uint_eq(b.open, 0);
	/* Gone from the list: never a victim. */
	open_idle(1);
	ck_assert_int_eq(fdb_make_room(&b, 12, claim, NULL, &v), 1);
	ck_assert_ptr_eq(v, &e[1]);
}
END_TEST

START_TEST(test_take_idle_and_could_open)
{
	int i;

	ck_assert(fdb_could_open(&b, FDB_OPEN_COST));
	for (i = 0; i < 4; i++)
		open_idle(i);
	/* full, but idle entries could be closed for room */
	ck_assert(fdb_could_open(&b, FDB_OPEN_COST));
	ck_assert_int_eq(fdb_pin(&b, &e[1], 0), 0);
	ck_assert_int_eq(fdb_take_idle(&b, &e[1]), 0); /* pinned: left */
	ck_assert_int_eq(e[1].open, 1);
	ck_assert_int_eq(fdb_take_idle(&b, &e[2]), 1);
	ck_assert_int_eq(e[2].open, 0);
	ck_assert_uint_eq(b.open, 3);
	ck_assert_uint_eq(b.evictions, 0); /* not the budget's choice */
	fdb_closed(&b, &e[2]);
	ck_assert_uint_eq(b.used, 9);
	ck_assert_int_eq(fdb_take_idle(&b, &e[2]), 0); /* closed already */
	/* every open entry pinned, the budget full: no open could */
	ck_assert_int_eq(fdb_pin(&b, &e[0], 0), 0);
	ck_assert_int_eq(fdb_pin(&b, &e[3], 0), 0);
	ck_assert(fdb_could_open(&b, FDB_OPEN_COST)); /* 3 left */
	ck_assert(!fdb_could_open(&b, FDB_OPEN_COST + 1));
}
END_TEST

static Suite *fdbudget_suite(void)
{
	Suite *s = suite_create("fdbudget");
	TCase *tc = tcase_create("books");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_least_recently_used_goes_first);
	tcase_add_test(tc, test_pinned_and_unclaimable_are_skipped);
	tcase_add_test(tc, test_exhausted_by_pins_fails_only_the_new_request);
	tcase_add_test(tc, test_unclaimable_idle_is_eagain_not_emfile);
	tcase_add_test(tc, test_growth_goes_over_and_is_trimmed);
	tcase_add_test(tc, test_take_closes_whatever_its_pins);
	tcase_add_test(tc, test_take_idle_and_could_open);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fdbudget_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
