/*
 * model.h - the in-memory model of a partition log that check_partition
 * and check_recovery compare the real partition with: every byte
 * appended, where each message starts, where each segment and each batch
 * ended, and the start of the retained log.  The tests move start_byte
 * and start_off themselves (retention, delete_before); the model only
 * mirrors appends.  Also the one invariant both tests check the same way
 * (the partition's info against the model) and the config and directory
 * helpers both start from.
 */
#ifndef FLUXFS_MODEL_H
#define FLUXFS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "partition.h"

/* Fixed tables: no test makes more segments or batches than this, and
 * model_append() stops the test rather than write past the end. */
#define MODEL_MAX_SEGMENTS 4096
#define MODEL_MAX_BATCHES 4096

struct model {
	unsigned char *data; /* byte i of the log */
	uint64_t cap, end, start_byte, start_off;
	uint64_t *msg; /* start byte of message i */
	uint64_t nmsg, msgcap;
	/* start byte of each segment created; filled by the test, which
	 * knows when the partition rolled */
	uint64_t seg[MODEL_MAX_SEGMENTS];
	uint32_t nseg;
	uint64_t bend[MODEL_MAX_BATCHES]; /* end byte after each batch */
	uint64_t bmsg[MODEL_MAX_BATCHES]; /* message count after each batch */
	uint32_t nb;
};

/* An empty log: one segment, starting at byte 0. */
void model_init(struct model *m);
void model_release(struct model *m);
/* Mirror one appended batch of len bytes (complete lines, but for a
 * possible unterminated tail). */
void model_append(struct model *m, const char *buf, size_t len);
/* Forget the last k batches, as recovery does with a torn tail. */
void model_drop(struct model *m, uint32_t k);
/* Index of the message containing byte b. */
uint64_t model_msg_at(const struct model *m, uint64_t b);

/* The partition's info agrees with the model on both ends of the log,
 * in bytes and in offsets; info is filled for the caller's further
 * checks. */
void model_check_info(struct partition *p, const struct model *m,
		      struct partition_info *info);

/* A config with no roll by time, no retention, no timed flush and no
 * compression, so only what a test sets changes; segment_bytes is the one
 * default the two tests disagree on. */
void model_cfg_init(struct config *c, uint64_t segment_bytes);
/* How many files in dir end in suffix (".log", ".idx", ...). */
int count_files(const char *dir, const char *suffix);

#endif
