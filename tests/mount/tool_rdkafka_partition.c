/*
 * tool_rdkafka_partition.c - for each key on stdin (one per line), print
 * the partition librdkafka's murmur2_random partitioner (Kafka's
 * DefaultPartitioner for keyed messages) picks among argv[1] partitions.
 * No broker is needed: the partitioner is a pure function of the key.
 * produce.sh compiles it with librdkafka's headers when they are there
 * and checks fluxfs's placement against it.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char line[4096], err[256];
	rd_kafka_conf_t *conf;
	rd_kafka_topic_t *rkt;
	rd_kafka_t *rk;
	size_t len;
	int n;

	if (argc != 2 || (n = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: %s PARTITIONS < keys\n", argv[0]);
		return 2;
	}
	conf = rd_kafka_conf_new();
	/* No broker is configured on purpose: keep librdkafka quiet. */
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rd_kafka_new: %s\n", err);
		return 1;
	}
	rkt = rd_kafka_topic_new(rk, "t", NULL);
	while (fgets(line, sizeof(line), stdin)) {
		len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		printf("%d\n", (int)rd_kafka_msg_partitioner_murmur2_random(
				       rkt, line, len, n, NULL, NULL));
	}
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return 0;
}
