/*
 * tool_kafka.c - librdkafka's in-process mock Kafka cluster, for the
 * mirror's mount tests (there is no Kafka broker on the test machine).
 *
 *   tool_kafka mock BROKERS [rtt=MS] [missing=TOPIC] TOPIC:PARTITIONS...
 *       start a mock cluster of BROKERS brokers (each answering after MS
 *       milliseconds with rtt=, to slow an export down; missing= makes
 *       the cluster answer UNKNOWN_TOPIC_OR_PART for TOPIC instead of
 *       creating it on first use; lead=TOPIC:B, after TOPIC, makes
 *       broker B lead all its partitions; down=B starts with broker B
 *       down, so only the partitions it leads fail) with those topics (3
 *       replicas where there are 3 brokers), print its bootstrap address
 *       on one line and serve until SIGTERM/SIGINT.  SIGUSR1 takes every
 *       broker down (see "Outages" below), SIGUSR2 brings them back, and
 *       each logs one line ("brokers down", "brokers up") once done.
 *       SIGHUP makes the next 20
 *       Produce requests fail with a retriable error (NOT_ENOUGH_REPLICAS);
 *       SIGWINCH makes the next Fetch request answer OFFSET_OUT_OF_RANGE
 *       and SIGURG the next ListOffsets request answer
 *       NOT_LEADER_FOR_PARTITION, the answers a client may see while a
 *       cluster recovers.
 *
 *   tool_kafka outage-check CYCLES drain|plain
 *       check the outages themselves, without fluxfs (below).
 *
 * What arrived is checked with an independent client (kcat) against the
 * printed address.
 *
 * Outages.  A real broker remembers the last sequence numbers of each
 * idempotent producer and answers a retried Produce request it already
 * appended without appending it again.  This mock (librdkafka 2.0.2, and
 * its later versions too) checks sequence numbers only for transactional
 * producers, and taking a broker down closes its connections with the
 * answers it had queued but not yet written: a request appended just
 * before is retried by the client and appended twice (outage-check
 * shows it; figures in doc/kafka.md).  So SIGUSR1 first makes the
 * cluster refuse every Produce request with a retriable error (nothing
 * appended), waits until the answers already queued are written, and
 * only then closes the connections: a duplicate seen across an outage is then the exporter's,
 * as it would be against a real cluster.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Produce requests refused before an outage: more than a client retries
 * (every retry.backoff.ms, 100 by default) while the answers drain. */
#define OUTAGE_REFUSALS 1000
#define OUTAGE_DRAIN_US 500000

static volatile sig_atomic_t quit, down, up, errs, fetcherr, listerr;

/* The cluster's next n Produce requests (ApiKey 0) fail with a
 * retriable error, appending nothing. */
static void refuse_produce(rd_kafka_mock_cluster_t *mc, size_t n)
{
	rd_kafka_resp_err_t e[OUTAGE_REFUSALS];
	size_t i;

	if (n > OUTAGE_REFUSALS)
		n = OUTAGE_REFUSALS;
	for (i = 0; i < n; i++)
		e[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
	rd_kafka_mock_push_request_errors_array(mc, 0, n, e);
}

/* Every broker down; with drain, only once the answers already queued
 * are written (see "Outages" above). */
static void brokers_down(rd_kafka_mock_cluster_t *mc, int brokers, int drain)
{
	int i;

	if (drain) {
		/* The mock writes a queued answer at its next poll, or
		 * after its rtt=, well within the wait. */
		refuse_produce(mc, OUTAGE_REFUSALS);
		usleep(OUTAGE_DRAIN_US);
	}
	for (i = 1; i <= brokers; i++)
		rd_kafka_mock_broker_set_down(mc, i);
}

static void brokers_up(rd_kafka_mock_cluster_t *mc, int brokers)
{
	int i;

	/* The refusals not used while down (and any left of a SIGHUP
	 * before the outage) go. */
	rd_kafka_mock_clear_request_errors(mc, 0);
	for (i = 1; i <= brokers; i++)
		rd_kafka_mock_broker_set_up(mc, i);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		down = 1;
	else if (sig == SIGUSR2)
		up = 1;
	else if (sig == SIGHUP)
		errs = 1;
	else if (sig == SIGWINCH)
		fetcherr = 1;
	else if (sig == SIGURG)
		listerr = 1;
	else
		quit = 1;
}

static int mock(int argc, char **argv)
{
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct sigaction sa;
	char err[256];
	rd_kafka_t *rk;
	int brokers = atoi(argv[2]), i, j;
	/* Partition counts of the topics made so far, for lead=. */
	const char *names[64];
	int counts[64], ntopics = 0;

	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "tool_kafka: %s\n", err);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc) {
		fprintf(stderr, "tool_kafka: cannot start the mock cluster\n");
		return 1;
	}
	for (i = 3; i < argc; i++) {
		char *colon = strrchr(argv[i], ':');

		if (strncmp(argv[i], "rtt=", 4) == 0) {
			int b;

			for (b = 1; b <= brokers; b++)
				rd_kafka_mock_broker_set_rtt(mc, b,
							     atoi(argv[i] + 4));
			continue;
		}
		if (strncmp(argv[i], "missing=", 8) == 0) {
			rd_kafka_mock_topic_set_error(
				mc, argv[i] + 8,
				RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
			continue;
		}
		if (strncmp(argv[i], "down=", 5) == 0) {
			rd_kafka_mock_broker_set_down(mc, atoi(argv[i] + 5));
			continue;
		}
		if (strncmp(argv[i], "lead=", 5) == 0 && colon) {
			*colon = '\0';
			for (j = 0; j < ntopics; j++)
				if (strcmp(names[j], argv[i] + 5) == 0)
					break;
			if (j == ntopics) {
				fprintf(stderr, "tool_kafka: lead=%s: no such "
						"topic (yet)\n", argv[i] + 5);
				return 2;
			}
			while (counts[j]-- > 0)
				rd_kafka_mock_partition_set_leader(
					mc, names[j], counts[j],
					atoi(colon + 1));
			continue;
		}
		if (!colon) {
			fprintf(stderr, "tool_kafka: %s: not TOPIC:N\n",
				argv[i]);
			return 2;
		}
		*colon = '\0';
		if (rd_kafka_mock_topic_create(mc, argv[i], atoi(colon + 1),
					       brokers >= 3 ? 3 : 1)) {
			fprintf(stderr, "tool_kafka: cannot create %s\n",
				argv[i]);
			return 1;
		}
		if (ntopics < 64) {
			names[ntopics] = argv[i];
			counts[ntopics++] = atoi(colon + 1);
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGURG, &sa, NULL);
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (!quit) {
		usleep(20000);
		if (down) {
			down = 0;
			brokers_down(mc, brokers, 1);
			fprintf(stderr, "tool_kafka: brokers down\n");
		}
		if (up) {
			up = 0;
			brokers_up(mc, brokers);
			fprintf(stderr, "tool_kafka: brokers up\n");
		}
		if (errs) {
			errs = 0;
			refuse_produce(mc, 20);
			fprintf(stderr, "tool_kafka: 20 produce errors\n");
		}
		if (fetcherr) {
			fetcherr = 0;
			/* ApiKey 1: Fetch. */
			rd_kafka_mock_push_request_errors(
				mc, 1, 1, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE);
			fprintf(stderr, "tool_kafka: 1 fetch error\n");
		}
		if (listerr) {
			listerr = 0;
			/* ApiKey 2: ListOffsets. */
			rd_kafka_mock_push_request_errors(
				mc, 2, 1,
				RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
			fprintf(stderr, "tool_kafka: 1 list-offsets error\n");
		}
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac,
		      const char *buf)
{
	(void)rk;
	(void)level;
	(void)fac;
	(void)buf;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap,
			  const char *const *props)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set_log_cb(conf, quiet_log);
	if (bootstrap &&
	    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
			      sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "tool_kafka: %s\n", err);
		exit(1);
	}
	for (; props && props[0]; props += 2)
		if (rd_kafka_conf_set(conf, props[0], props[1], err,
				      sizeof(err)) != RD_KAFKA_CONF_OK) {
			fprintf(stderr, "tool_kafka: %s\n", err);
			exit(1);
		}
	rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "tool_kafka: %s\n", err);
		exit(1);
	}
	return rk;
}

struct checker {
	rd_kafka_t *p;
	volatile int stop;
	long sent;
};

/* Produce numbered records in batches of 200, 5,000 a second. */
static void *produce_numbers(void *arg)
{
	struct checker *c = arg;
	char v[32];
	int len;

	while (!c->stop) {
		len = snprintf(v, sizeof(v), "%ld", c->sent);
		if (rd_kafka_producev(c->p, RD_KAFKA_V_TOPIC("t"),
				      RD_KAFKA_V_PARTITION(0),
				      RD_KAFKA_V_VALUE(v, (size_t)len),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_END) == 0)
			c->sent++;
		else
			rd_kafka_poll(c->p, 5);
		if (c->sent % 200 == 0) {
			rd_kafka_poll(c->p, 0);
			usleep(40000);
		}
	}
	return NULL;
}

/* outage-check CYCLES drain|plain: without fluxfs, an idempotent
 * producer sends numbered records to a 3-broker mock (answers delayed
 * 20 ms, so that an outage always finds some queued) whose brokers all
 * go down for 100 ms CYCLES times, as SIGUSR1 takes them down (drain) or
 * by closing their connections at once (plain); then every record is
 * read back.  Prints the counts; exit 0 only if each number is there
 * exactly once.  Shows that the test harness's outages do not duplicate
 * records themselves, which plain ones do (see "Outages" above). */
static int outage_check(int cycles, int drain)
{
	static const char *const pprops[] = {
		"enable.idempotence", "true", "acks", "all",
		"message.timeout.ms", "0", "linger.ms", "1",
		"reconnect.backoff.ms", "5", "reconnect.backoff.max.ms", "50",
		NULL};
	static const char *const cprops[] = {"group.id", "outage-check",
					     "enable.partition.eof", "true",
					     NULL};
	struct checker c = {0};
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_message_t *m;
	rd_kafka_t *mrk, *cons;
	long got = 0, twice = 0, x, missing = 0, i;
	char *seen, v[32];
	pthread_t t;
	int cyc, b;

	mrk = client(RD_KAFKA_PRODUCER, NULL, NULL);
	mc = rd_kafka_mock_cluster_new(mrk, 3);
	if (!mc || rd_kafka_mock_topic_create(mc, "t", 1, 3)) {
		fprintf(stderr, "tool_kafka: cannot start the mock\n");
		return 1;
	}
	for (b = 1; b <= 3; b++)
		rd_kafka_mock_broker_set_rtt(mc, b, 20);
	c.p = client(RD_KAFKA_PRODUCER, rd_kafka_mock_cluster_bootstraps(mc),
		     pprops);
	if (pthread_create(&t, NULL, produce_numbers, &c))
		return 1;
	for (cyc = 0; cyc < cycles; cyc++) {
		usleep(1500000); /* reconnected, producing */
		brokers_down(mc, 3, drain);
		usleep(100000);
		brokers_up(mc, 3);
	}
	c.stop = 1;
	pthread_join(t, NULL);
	if (rd_kafka_flush(c.p, 120000)) {
		fprintf(stderr, "tool_kafka: not delivered in 120 s\n");
		return 1;
	}
	cons = client(RD_KAFKA_CONSUMER, rd_kafka_mock_cluster_bootstraps(mc),
		      cprops);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, "t", 0)->offset =
	    RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(cons, l);
	rd_kafka_topic_partition_list_destroy(l);
	seen = calloc((size_t)c.sent + 1, 1);
	if (!seen)
		return 1;
	while ((m = rd_kafka_consumer_poll(cons, 10000))) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			break;
		}
		if (!m->err && m->len < sizeof(v)) {
			memcpy(v, m->payload, m->len);
			v[m->len] = '\0';
			x = atol(v);
			got++;
			if (x >= 0 && x < c.sent && seen[x]++)
				twice++;
		}
		rd_kafka_message_destroy(m);
	}
	for (i = 0; i < c.sent; i++)
		missing += !seen[i];
	printf("%s outages: %d, records sent %ld, read %ld, twice %ld, "
	       "missing %ld\n",
	       drain ? "drained" : "plain", cycles, c.sent, got, twice,
	       missing);
	free(seen);
	rd_kafka_destroy(cons);
	rd_kafka_destroy(c.p);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mrk);
	return twice || missing ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "mock") == 0)
		return mock(argc, argv);
	if (argc == 4 && strcmp(argv[1], "outage-check") == 0)
		return outage_check(atoi(argv[2]),
				    strcmp(argv[3], "plain") != 0);
	fprintf(stderr, "usage: tool_kafka mock BROKERS [rtt=MS] [missing=TOPIC] "
			"[lead=TOPIC:B] [down=B] "
			"TOPIC:PARTITIONS...\n"
			"       tool_kafka outage-check CYCLES drain|plain\n");
	return 2;
}
