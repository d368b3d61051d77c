/*
 * fuzz_config.c - libFuzzer target for the configuration parsers: one
 * parser serves mount options, topic.conf and xattr values, so hostile
 * bytes arrive through all three.  Beyond "no crash", it checks that what
 * the parser accepts renders back to text that parses to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_config(const struct config *a, const struct config *b)
{
	if (a->segment_bytes != b->segment_bytes ||
	    a->segment_ms != b->segment_ms ||
	    a->retention_bytes != b->retention_bytes ||
	    a->retention_ms != b->retention_ms ||
	    a->flush_ms != b->flush_ms ||
	    a->max_message_bytes != b->max_message_bytes ||
	    a->compression != b->compression || a->set != b->set)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg, again, before;
	char text[4096], value[64];
	int bad_line = 0, key, len;

	/* Whole-file form: accepted text must round-trip exactly. */
	memset(&cfg, 0, sizeof(cfg));
	if (config_parse_text(&cfg, (const char *)data, size, &bad_line) == 0) {
		len = config_render_text(&cfg, text, sizeof(text));
		if (len < 0)
			abort();
		memset(&again, 0, sizeof(again));
		if (config_parse_text(&again, text, len, &bad_line) != 0)
			abort();
		same_config(&cfg, &again);
	}

	/* Single values for every key: a rejected value leaves cfg as it was,
	 * an accepted one formats canonically and parses back the same. */
	for (key = 0; key < CONFIG_NKEYS; key++) {
		config_defaults(&cfg);
		before = cfg;
		if (config_set(&cfg, key, (const char *)data, size) != 0) {
			same_config(&before, &cfg);
			continue;
		}
		len = config_format(&cfg, key, value, sizeof(value));
		if (len < 0)
			abort();
		again = before;
		if (config_set(&again, key, value, len) != 0)
			abort();
		same_config(&cfg, &again);
	}
	config_defaults(&cfg);
	config_set_pair(&cfg, (const char *)data, size);
	return 0;
}
