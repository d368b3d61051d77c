/*
 * segment.h - one segment: a .log of raw bytes and an .idx batch table.
 *
 * The engine helper fills this in; see doc/storage.md for the on-disk
 * format.  Only partition.c uses it.
 */
#ifndef FLUXFS_SEGMENT_H
#define FLUXFS_SEGMENT_H

#endif
