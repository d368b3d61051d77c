/*
 * ref_fuse.c - the reference FUSE filesystem the benchmarks measure fluxfs
 * against: the ceiling of the FUSE channel on this machine.
 *
 * One flat directory whose files are backed 1:1 by files in a backing
 * directory, served with the libfuse3 lowlevel API and its multithreaded
 * loop, with the same channel choices fluxfs makes (doc/performance.md):
 * direct_io on writer opens, keep_cache on reader opens, no writeback cache,
 * st_blksize 1 MiB, O_APPEND honoured by the daemon (append at the backing
 * file's size under a per-file lock), reads answered from the backing
 * descriptor with fuse_reply_data().  It does nothing else: no messages, no
 * index, no CRC, so the gap between it and fluxfs is fluxfs's own cost.
 *
 *     ref_fuse [-f] [-d] [-o opts] BACKING_DIR MOUNTPOINT
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REF_MAX_NODES 8192
#define REF_BLKSIZE (1 << 20)
#define REF_TIMEOUT 1.0
/* Handler arguments the lowlevel API passes and these handlers ignore. */
#define UNUSED __attribute__((unused))

/* One file the kernel knows about; inode number = index + 2. */
struct ref_node {
	char name[NAME_MAX + 1]; /* protected by ref_fs.lock */
	uint64_t nlookup;	 /* protected by ref_fs.lock */
	pthread_mutex_t append;	 /* serialises O_APPEND writes to the file */
};

/* The mount's one state struct. */
struct ref_fs {
	int backing_fd;
	pthread_mutex_t lock;
	struct ref_node *nodes;
	size_t nnodes; /* protected by lock; entries never go away */
};

static struct ref_fs *ref_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The node of ino, or NULL for the root and for numbers never handed out.
 * Nodes are never removed, so the pointer stays valid. */
static struct ref_node *ref_node(struct ref_fs *fs, fuse_ino_t ino)
{
	struct ref_node *n = NULL;

	pthread_mutex_lock(&fs->lock);
	if (ino >= 2 && ino - 2 < fs->nnodes)
		n = &fs->nodes[ino - 2];
	pthread_mutex_unlock(&fs->lock);
	return n;
}

/* Find or add the node for name; returns its inode number or -errno. */
static long ref_node_get(struct ref_fs *fs, const char *name)
{
	size_t i;
	long ret = -ENOSPC;

	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < fs->nnodes; i++) {
		if (!strcmp(fs->nodes[i].name, name)) {
			fs->nodes[i].nlookup++;
			ret = (long)i + 2;
			goto out;
		}
	}
	if (fs->nnodes < REF_MAX_NODES) {
		i = fs->nnodes++;
		strcpy(fs->nodes[i].name, name);
		fs->nodes[i].nlookup = 1;
		ret = (long)i + 2;
	}
out:
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* stat the backing file of ino (or the backing directory for the root). */
static int ref_stat(struct ref_fs *fs, fuse_ino_t ino, struct stat *st)
{
	struct ref_node *n;
	int ret;

	if (ino == FUSE_ROOT_ID) {
		ret = fstat(fs->backing_fd, st);
	} else {
		n = ref_node(fs, ino);
		if (!n)
			return -ENOENT;
		ret = fstatat(fs->backing_fd, n->name, st, AT_SYMLINK_NOFOLLOW);
	}
	if (ret < 0)
		return -errno;
	st->st_ino = ino;
	st->st_blksize = REF_BLKSIZE;
	return 0;
}

static void ref_reply_entry(fuse_req_t req, struct ref_fs *fs, const char *name,
			    struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	long ino;
	int ret;

	memset(&e, 0, sizeof(e));
	ino = ref_node_get(fs, name);
	if (ino < 0) {
		ret = (int)ino;
		goto out_err;
	}
	ret = ref_stat(fs, (fuse_ino_t)ino, &e.attr);
	if (ret < 0)
		goto out_err;
	e.ino = (fuse_ino_t)ino;
	e.attr_timeout = REF_TIMEOUT;
	e.entry_timeout = REF_TIMEOUT;
	if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
	return;
out_err:
	/* A created file whose node we cannot track: give back the fd. */
	if (fi)
		close((int)fi->fh);
	fuse_reply_err(req, -ret);
}

static void ref_init(UNUSED void *userdata, struct fuse_conn_info *conn)
{
	/* With the writeback cache the kernel would compute O_APPEND
	 * offsets itself from the size it caches: off, as in fluxfs. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void ref_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ref_fs *fs = ref_fs(req);
	struct stat st;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (fstatat(fs->backing_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	ref_reply_entry(req, fs, name, NULL);
}

static void ref_forget_one(struct ref_fs *fs, fuse_ino_t ino, uint64_t n)
{
	pthread_mutex_lock(&fs->lock);
	if (ino >= 2 && ino - 2 < fs->nnodes)
		fs->nodes[ino - 2].nlookup -= n;
	pthread_mutex_unlock(&fs->lock);
}

static void ref_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ref_forget_one(ref_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

static void ref_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		ref_forget_one(ref_fs(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ref_getattr(fuse_req_t req, fuse_ino_t ino,
			UNUSED struct fuse_file_info *fi)
{
	struct stat st;
	int ret;

	ret = ref_stat(ref_fs(req), ino, &st);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, REF_TIMEOUT);
}

static void ref_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			int to_set, struct fuse_file_info *fi)
{
	struct ref_fs *fs = ref_fs(req);
	struct ref_node *n = ref_node(fs, ino);
	struct timespec ts[2];
	int fd = -1, ret = 0;

	if (!n) {
		ret = -EPERM; /* the root keeps its attributes */
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		fd = fi ? (int)fi->fh
			: openat(fs->backing_fd, n->name, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || ftruncate(fd, attr->st_size) < 0)
			ret = -errno;
		if (!fi && fd >= 0)
			close(fd);
		if (ret < 0)
			goto out;
	}
	if ((to_set & FUSE_SET_ATTR_MODE) &&
	    fchmodat(fs->backing_fd, n->name, attr->st_mode & 07777, 0) < 0) {
		ret = -errno;
		goto out;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_nsec = UTIME_OMIT;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(fs->backing_fd, n->name, ts,
			      AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			goto out;
		}
	}
out:
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		ref_getattr(req, ino, fi);
}

/* Writers get direct_io (no page-cache copy); readers the page cache. */
static void ref_set_open_flags(struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
}

/* Backing opens never carry O_APPEND: ref_write places appends itself, and
 * pwrite on an O_APPEND descriptor would ignore its offset. */
static int ref_backing_flags(int flags)
{
	return (flags & ~(O_APPEND | O_NOCTTY | O_NOFOLLOW)) | O_CLOEXEC;
}

static void ref_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	struct ref_fs *fs = ref_fs(req);
	int fd;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fd = openat(fs->backing_fd, name,
		    ref_backing_flags(fi->flags) | O_CREAT | O_NOFOLLOW,
		    mode & 07777);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	ref_set_open_flags(fi);
	ref_reply_entry(req, fs, name, fi);
}

static void ref_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ref_fs *fs = ref_fs(req);
	struct ref_node *n = ref_node(fs, ino);
	int fd;

	if (!n) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	fd = openat(fs->backing_fd, n->name,
		    ref_backing_flags(fi->flags & ~(O_CREAT | O_EXCL)) |
			    O_NOFOLLOW);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	ref_set_open_flags(fi);
	fuse_reply_open(req, fi);
}

static void ref_read(fuse_req_t req, UNUSED fuse_ino_t ino, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void ref_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		      size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ref_node *n = ref_node(ref_fs(req), ino);
	int fd = (int)fi->fh, append = (fi->flags & O_APPEND) != 0;
	size_t done = 0;
	struct stat st;
	ssize_t w;
	int ret = 0;

	if (!n) {
		fuse_reply_err(req, EBADF);
		return;
	}
	/* Without writeback cache the kernel's offset for an O_APPEND write
	 * is its own cached size; the end of the backing file is the truth. */
	if (append) {
		pthread_mutex_lock(&n->append);
		if (fstat(fd, &st) < 0) {
			ret = -errno;
			goto out;
		}
		off = st.st_size;
	}
	while (done < size) {
		w = pwrite(fd, data + done, size - done, off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = w < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)w;
	}
out:
	if (append)
		pthread_mutex_unlock(&n->append);
	if (done > 0 || ret == 0)
		fuse_reply_write(req, done);
	else
		fuse_reply_err(req, -ret);
}

static void ref_flush(fuse_req_t req, UNUSED fuse_ino_t ino,
		      UNUSED struct fuse_file_info *fi)
{
	/* Answered (not ENOSYS) so the kernel keeps sending FLUSH on close,
	 * as it must to fluxfs: the comparison counts the same round trips. */
	fuse_reply_err(req, 0);
}

static void ref_release(fuse_req_t req, UNUSED fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void ref_fsync(fuse_req_t req, UNUSED fuse_ino_t ino, int datasync,
		      struct fuse_file_info *fi)
{
	int ret = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

	fuse_reply_err(req, ret < 0 ? errno : 0);
}

static void ref_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ref_fs *fs = ref_fs(req);

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_err(req, unlinkat(fs->backing_fd, name, 0) < 0 ? errno : 0);
}

/* Entries are numbered from 1 in backing-directory order; the directory is
 * re-read on every call, which is fine for the few files a benchmark
 * keeps. */
static void ref_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			UNUSED struct fuse_file_info *fi)
{
	struct ref_fs *fs = ref_fs(req);
	struct dirent *de;
	struct stat st;
	size_t used = 0, n;
	char *buf = NULL;
	DIR *dir = NULL;
	off_t idx = 0;
	int fd, ret = 0;

	if (ino != FUSE_ROOT_ID) {
		ret = -ENOTDIR;
		goto out;
	}
	buf = malloc(size);
	fd = openat(fs->backing_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!buf || fd < 0) {
		ret = buf ? -errno : -ENOMEM;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		goto out;
	}
	memset(&st, 0, sizeof(st));
	while ((de = readdir(dir)) != NULL) {
		if (++idx <= off)
			continue;
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)DTTOIF(de->d_type);
		n = fuse_add_direntry(req, buf + used, size - used, de->d_name,
				      &st, idx);
		if (n > size - used)
			break;
		used += n;
	}
out:
	if (dir)
		closedir(dir);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static const struct fuse_lowlevel_ops ref_ops = {
	.init = ref_init,
	.lookup = ref_lookup,
	.forget = ref_forget,
	.forget_multi = ref_forget_multi,
	.getattr = ref_getattr,
	.setattr = ref_setattr,
	.create = ref_create,
	.open = ref_open,
	.read = ref_read,
	.write = ref_write,
	.flush = ref_flush,
	.release = ref_release,
	.fsync = ref_fsync,
	.unlink = ref_unlink,
	.readdir = ref_readdir,
};

/* The first non-option argument is the backing directory; the second is
 * left for fuse_parse_cmdline() as the mount point. */
static int ref_opt_proc(void *data, const char *arg, int key,
			UNUSED struct fuse_args *outargs)
{
	char **backing = data;

	if (key == FUSE_OPT_KEY_NONOPT && !*backing) {
		*backing = strdup(arg);
		return 0;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct ref_fs fs;
	char *backing = NULL;
	size_t i;
	int ret = 1;

	memset(&fs, 0, sizeof(fs));
	memset(&opts, 0, sizeof(opts));
	fs.backing_fd = -1;
	pthread_mutex_init(&fs.lock, NULL);
	if (fuse_opt_parse(&args, &backing, NULL, ref_opt_proc) < 0 ||
	    fuse_parse_cmdline(&args, &opts) != 0)
		goto out;
	if (opts.show_help || !backing || !opts.mountpoint) {
		fprintf(stderr,
			"usage: %s [-f] [-d] [-o opts] BACKING_DIR "
			"MOUNTPOINT\n",
			argv[0]);
		ret = opts.show_help ? 0 : 1;
		goto out;
	}
	fs.backing_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs.backing_fd < 0) {
		fprintf(stderr, "ref_fuse: cannot open '%s': %s\n", backing,
			strerror(errno));
		goto out;
	}
	fs.nodes = calloc(REF_MAX_NODES, sizeof(*fs.nodes));
	if (!fs.nodes)
		goto out;
	for (i = 0; i < REF_MAX_NODES; i++)
		pthread_mutex_init(&fs.nodes[i].append, NULL);
	se = fuse_session_new(&args, &ref_ops, sizeof(ref_ops), &fs);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, opts.max_threads);
	ret = fuse_session_loop_mt(se, loop) ? 1 : 0;
	fuse_loop_cfg_destroy(loop);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out:
	if (fs.backing_fd >= 0)
		close(fs.backing_fd);
	free(fs.nodes);
	free(backing);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
