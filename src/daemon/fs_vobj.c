/*
 * fs_vobj.c - the inode objects of the views below a special directory
 * (MNT/.groups, MNT/.at): malloc'ed, 16-byte aligned so that a view's
 * FUSE inode can be the object's address with its tag in TAG_BITS,
 * alive while the kernel holds a lookup count on them (forget frees
 * them).  Each holds one registry lookup count on the topic or partition
 * it shows, so a renamed partition stays the same object and a deleted
 * one lives until forgot.  Lookups of one (kind, name, node) give back
 * the same object (a live list), so the kernel sees stable inodes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fs_int.h"

struct vobj *vobj_get(struct vobj_list *l, int kind, const char *name,
		      struct node *n)
{
	struct vobj *o;

	pthread_mutex_lock(&l->lock);
	for (o = l->live; o; o = o->next)
		if (o->kind == kind && o->n == n && !strcmp(o->name, name))
			break;
	if (o) {
		o->nlookup++;
		pthread_mutex_unlock(&l->lock);
		if (n)
			registry_forget(fs.reg, n, 1);
		return o;
	}
	o = aligned_alloc(16, sizeof(*o));
	if (o) {
		memset(o, 0, sizeof(*o));
		o->name = strdup(name);
		if (!o->name) {
			free(o);
			o = NULL;
		}
	}
	if (o) {
		o->kind = kind;
		o->n = n;
		o->nlookup = 1;
		o->next = l->live;
		l->live = o;
	}
	pthread_mutex_unlock(&l->lock);
	if (!o && n)
		registry_forget(fs.reg, n, 1);
	return o;
}

void vobj_forget(struct vobj_list *l, struct vobj *o, uint64_t nlookup)
{
	struct vobj **pp;

	pthread_mutex_lock(&l->lock);
	o->nlookup -= nlookup < o->nlookup ? nlookup : o->nlookup;
	if (o->nlookup) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	for (pp = &l->live; *pp && *pp != o; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = o->next;
	pthread_mutex_unlock(&l->lock);
	if (o->n)
		registry_forget(fs.reg, o->n, 1);
	free(o->name);
	free(o);
}

int vobj_child(struct vobj_list *l, struct vobj *dir, struct node *dirn,
	       const char *name, int kind, struct vobj **out)
{
	struct node *n;
	int ret = registry_lookup(fs.reg, dirn, name, &n);

	if (ret < 0)
		return ret;
	*out = vobj_get(l, kind, dir->name, n);
	return *out ? 0 : -ENOMEM;
}

uint64_t vobj_st_ino(const struct vobj *o, uint64_t view_bits)
{
	uint64_t h = crc32c(0, o->name, strlen(o->name));

	return view_bits | (((h << 28) & ~(15ULL << 60)) ^
			    (o->n ? registry_st_ino(fs.reg, o->n) : 2));
}
