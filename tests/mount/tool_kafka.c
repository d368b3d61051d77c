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
 * What arrived is checked with an independent client (kcat) against the
 * printed address.
 *
 * Outages.  A real broker remembers the last sequence numbers of each
 * idempotent producer and answers a retried Produce request it already
 * appended without appending it again.  This mock (librdkafka 2.0.2, and
 * its later versions too) checks sequence numbers only for transactional
 * producers, and taking a broker down closes its connections with the
 * answers it had queued but not yet written: a request appended just
 * before is retried by the client and appended twice.  Shown without
 * fluxfs (an idempotent producer, 60 outages): 200 or 400 records twice
 * in two runs of three.  So SIGUSR1 first makes the cluster refuse every
 * Produce request with a retriable error (nothing appended), waits until
 * the answers already queued are written, and only then closes the
 * connections: a duplicate seen across an outage is then the exporter's,
 * as it would be against a real cluster.
 */
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
#define OUTAGE_DRAIN_US 200000

static volatile sig_atomic_t quit, down, up, errs, fetcherr, listerr;

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
			rd_kafka_resp_err_t e[OUTAGE_REFUSALS];

			down = 0;
			for (i = 0; i < OUTAGE_REFUSALS; i++)
				e[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
			/* ApiKey 0: Produce.  The mock writes a queued
			 * answer at its next poll, well within the wait. */
			rd_kafka_mock_push_request_errors_array(
				mc, 0, OUTAGE_REFUSALS, e);
			usleep(OUTAGE_DRAIN_US);
			for (i = 1; i <= brokers; i++)
				rd_kafka_mock_broker_set_down(mc, i);
			fprintf(stderr, "tool_kafka: brokers down\n");
		}
		if (up) {
			up = 0;
			/* The refusals not used while down (and any left of
			 * a SIGHUP before the outage) go. */
			rd_kafka_mock_clear_request_errors(mc, 0);
			for (i = 1; i <= brokers; i++)
				rd_kafka_mock_broker_set_up(mc, i);
			fprintf(stderr, "tool_kafka: brokers up\n");
		}
		if (errs) {
			rd_kafka_resp_err_t e[20];

			errs = 0;
			for (i = 0; i < 20; i++)
				e[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
			/* ApiKey 0: Produce. */
			rd_kafka_mock_push_request_errors_array(mc, 0, 20, e);
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

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "mock") == 0)
		return mock(argc, argv);
	fprintf(stderr, "usage: tool_kafka mock BROKERS [rtt=MS] [missing=TOPIC] "
			"[lead=TOPIC:B] [down=B] "
			"TOPIC:PARTITIONS...\n");
	return 2;
}
