/*
 * fluxfs.c - main(): parse the command line, open the data directory,
 * mount, daemonize, serve, and on unmount or SIGTERM/SIGINT flush and
 * close every partition before exiting.
 *
 *   fluxfs [-f] [-d] [-o opts] [DATA_DIR] MOUNTPOINT
 *
 * Options naming a configuration key (segment_bytes=...) set the defaults
 * of every topic and are parsed by config_set(), exactly as topic.conf
 * lines and xattr values are; every other -o option goes to libfuse
 * (allow_other, default_permissions, ...), which refuses unknown ones.
 *
 * allow_other implies default_permissions (the kernel checks modes and
 * owners against the caller, as on any filesystem): fluxfs checks no
 * permissions of its own, so a shared mount without it would let any
 * user read, append to, remove and chmod any partition.  The operator may
 * still opt out with -o no_default_permissions; the daemon then warns.
 *
 * A fault-injection build also runs on simulated power loss when
 * FLUXFS_CRASHSIM=1 (see powercut_setup() below).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "fault.h"
#include "fs.h"
#include "mirror.h"
#include "registry.h"

/* FUSE worker threads at most: enough for 64 writers' fsyncs, each
 * waiting in a thread of its own, to be in flight at once. */
#define FLUXFS_MAX_THREADS 256
#define FLUXFS_IDLE_THREADS 64

#ifdef FLUXFS_FAULT_INJECTION
#include <time.h>

#include "crashsim.h"

/*
 * Simulated power loss, test builds only.  FLUXFS_CRASHSIM=1 puts
 * crashsim's io table under every file syscall of the engine (below
 * fault injection) from before recovery on.  SIGUSR2 then cuts the
 * power: crashsim_powercut() undoes what the mode says of every change
 * not yet fsynced, and the process _exits at once -- no unmount, no
 * flush, no destructor -- as a machine losing power would.  The mode
 * comes from FLUXFS_CRASHSIM_MODE (keep, drop, garble, random, prefix;
 * default prefix), the seed from FLUXFS_CRASHSIM_SEED (default: time and
 * pid, logged so a failure replays).
 */
static int powercut_on;
static volatile sig_atomic_t powercut_started;
static enum crashsim_mode powercut_mode = CRASHSIM_PREFIX;
static uint64_t powercut_seed;

/* The undo truncates files other threads still have mapped (a segment's
 * .log, its index): one that touches a page past the new end gets
 * SIGBUS.  Once the cut has begun, that thread waits here for the _exit
 * instead of killing the process half-way through the undo, which would
 * leave an image no power loss can produce. */
static void powercut_sigbus(int sig)
{
	if (powercut_started)
		for (;;)
			pause();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read the environment and start recording; before any engine I/O. */
static int powercut_setup(void)
{
	const char *on = getenv("FLUXFS_CRASHSIM");
	const char *mode = getenv("FLUXFS_CRASHSIM_MODE");
	const char *seed = getenv("FLUXFS_CRASHSIM_SEED");
	sigset_t set;

	if (!on || strcmp(on, "1"))
		return 0;
	if (mode && *mode && crashsim_mode_parse(mode, &powercut_mode) < 0) {
		diag_err("bad FLUXFS_CRASHSIM_MODE '%s'", mode);
		return -EINVAL;
	}
	if (seed && *seed) {
		if (config_parse_u64(seed, &powercut_seed) < 0) {
			diag_err("bad FLUXFS_CRASHSIM_SEED '%s'", seed);
			return -EINVAL;
		}
	} else {
		powercut_seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	}
	/* Blocked here, inherited by every thread: only the waiter below
	 * ever takes it. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGBUS, powercut_sigbus);
	crashsim_install();
	powercut_on = 1;
	diag_info("crashsim: recording for a power cut on SIGUSR2 (mode %s, "
		  "seed %llu)",
		  mode && *mode ? mode : "prefix",
		  (unsigned long long)powercut_seed);
	return 0;
}

static void *powercut_wait(void *arg)
{
	struct crashsim_stats st;
	sigset_t set;
	int sig, ret;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	while (sigwait(&set, &sig) != 0 || sig != SIGUSR2)
		;
	powercut_started = 1;
	ret = crashsim_powercut(powercut_mode, powercut_seed, &st);
	fprintf(stderr,
		"fluxfs: crashsim: power cut (seed %llu): %d; files %u: "
		"kept %u dropped %u garbled %u torn %u; directory changes "
		"kept %u undone %u conflicts %u\n",
		(unsigned long long)powercut_seed, ret, st.files, st.kept,
		st.dropped, st.garbled, st.torn, st.dir_kept, st.dir_undone,
		st.dir_conflicts);
	_exit(ret < 0 ? 3 : 0);
}

/* Start the thread that waits for SIGUSR2 (after daemonizing: a fork
 * keeps no thread). */
static int powercut_start(void)
{
	pthread_t t;
	int ret;

	if (!powercut_on)
		return 0;
	ret = pthread_create(&t, NULL, powercut_wait, NULL);
	if (ret) {
		diag_err("cannot start the crashsim thread: %s", strerror(ret));
		return -ret;
	}
	pthread_detach(t);
	return 0;
}
#else
static int powercut_setup(void)
{
	return 0;
}

static int powercut_start(void)
{
	return 0;
}
#endif

/* The smallest fd_budget: a few partitions' active segments. */
#define FD_BUDGET_MIN 16

struct cmdline {
	const char *pos[3]; /* DATA_DIR and MOUNTPOINT (a third is an error) */
	int npos;
	int foreground;
	int debug;
	int help;
	int version;
	int bad;	   /* a configuration value was refused */
	int allow_other;
	int default_permissions;
	int no_default_permissions;
	struct config cfg; /* defaults with the mount options applied */
	uint64_t fd_budget; /* -o fd_budget=N; 0: half the open-file limit */
	uint64_t metrics_mem; /* -o metrics_mem=N; 0: the default */
	uint64_t listing_mem; /* -o listing_mem=N; 0: the default */
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_ALLOW_OTHER,
	KEY_DEFAULT_PERMISSIONS,
	KEY_NO_DEFAULT_PERMISSIONS
};

static const struct fuse_opt opts[] = {
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("no_default_permissions", KEY_NO_DEFAULT_PERMISSIONS),
	FUSE_OPT_END};

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-d] [-o opts] [DATA_DIR] MOUNTPOINT\n"
	       "\n"
	       "Serve the message-queue topics of DATA_DIR as appendable "
	       "files\n"
	       "at MOUNTPOINT.  DATA_DIR defaults to $FLUXFS_DATA, else\n"
	       "${XDG_DATA_HOME:-~/.local/share}/fluxfs.\n"
	       "\n"
	       "  -f                  stay in the foreground, log to stderr\n"
	       "  -d                  FUSE debug output (implies -f)\n"
	       "  -h, --help          this help\n"
	       "  -V, --version       print the version\n"
	       "  -o segment_bytes=N  roll segments at N bytes (default 256M)\n"
	       "  -o segment_ms=T     roll segments older than T (default 7d)\n"
	       "  -o retention_bytes=N keep at most N bytes per partition\n"
	       "  -o retention_ms=T   delete segments older than T\n"
	       "  -o flush_ms=T       fsync every T (0: every append, -1: "
	       "never)\n"
	       "  -o max_message_bytes=N  longest message (default 1M)\n"
	       "  -o compression=none|lz4|gzip|zstd[:LEVEL] for sealed "
	       "segments\n"
	       "  -o fd_budget=N      descriptors open partitions may hold\n"
	       "                      (default half the open-file limit)\n"
	       "  -o metrics_mem=N    bytes the .metrics snapshots held open\n"
	       "                      may take together (default 256M)\n"
	       "  -o listing_mem=N    bytes the directory listings held open\n"
	       "                      may take together (default 256M)\n"
	       "  -o allow_other      let other users in; implies\n"
	       "                      default_permissions (modes and owners\n"
	       "                      are enforced)\n"
	       "  -o no_default_permissions  with allow_other: enforce no\n"
	       "                      permissions at all (warned at mount)\n"
	       "  -o kafka.PROPERTY=V librdkafka's PROPERTY (a Kafka mirror)\n"
	       "  -o kafka.config=FILE more librdkafka properties, one\n"
	       "                      key=value a line (secrets)\n"
	       "  -o default_permissions, other FUSE options\n"
	       "\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT.  See fluxfs(8).\n",
	       prog);
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cmdline *cl = data;
	const char *eq;
	uint64_t *mem;
	int k, ret;

	switch (key) {
	case KEY_HELP:
		cl->help = 1;
		return 0;
	case KEY_VERSION:
		cl->version = 1;
		return 0;
	case KEY_FOREGROUND:
		cl->foreground = 1;
		return 0;
	case KEY_DEBUG:
		cl->debug = 1;
		cl->foreground = 1;
		return 1; /* libfuse turns on its own debug output */
	case KEY_ALLOW_OTHER:
		cl->allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		cl->default_permissions = 1;
		return 1;
	case KEY_NO_DEFAULT_PERMISSIONS:
		cl->no_default_permissions = 1;
		return 0; /* ours: libfuse does not know it */
	case FUSE_OPT_KEY_NONOPT:
		if (cl->npos < 3)
			cl->pos[cl->npos] = arg;
		cl->npos++;
		return 0;
	case FUSE_OPT_KEY_OPT:
		ret = mirror_option(arg); /* kafka.*: librdkafka's */
		if (ret != 0) {
			cl->bad |= ret < 0;
			return 0;
		}
		eq = strchr(arg, '=');
		if (!eq)
			return 1;
		if (!strncmp(arg, "fd_budget=", 10)) {
			if (config_parse_u64(eq + 1, &cl->fd_budget) < 0 ||
			    cl->fd_budget < FD_BUDGET_MIN) {
				fprintf(stderr,
					"fluxfs: bad value in option '%s' "
					"(at least %d)\n",
					arg, FD_BUDGET_MIN);
				cl->bad = 1;
			}
			return 0;
		}
		if (!strncmp(arg, "metrics_mem=", 12) ||
		    !strncmp(arg, "listing_mem=", 12)) {
			mem = arg[0] == 'm' ? &cl->metrics_mem
					    : &cl->listing_mem;
			if (config_parse_bytes(eq + 1, mem) < 0 || *mem == 0) {
				fprintf(stderr,
					"fluxfs: bad value in option '%s' "
					"(bytes, at least 1)\n",
					arg);
				cl->bad = 1;
			}
			return 0;
		}
		k = config_key_lookup(arg, (size_t)(eq - arg));
		if (k < 0)
			return 1; /* a FUSE option */
		ret = config_set(&cl->cfg, (enum config_key)k, eq + 1,
				 strlen(eq + 1));
		if (ret < 0) {
			fprintf(stderr, "fluxfs: bad value in option '%s'\n",
				arg);
			cl->bad = 1;
		}
		return 0;
	default:
		return 1;
	}
}

/* Open partitions hold descriptors: take all the open-file limit the
 * hard limit allows (the soft limit is often 1,024). */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		diag_warn("cannot raise the open-file limit to %llu: %s",
			  (unsigned long long)rl.rlim_max, strerror(errno));
}

/* Grow the process's descriptor table to hold descriptor from + the
 * budget now, while the daemon has one thread: the kernel grows the
 * table by doubling, and once threads share it each growth waits for an
 * RCU grace period inside the open() that needs it (10 to 25 ms: the
 * first reads after mounting 1,000 topics crossed 1,024 descriptors so,
 * the slowest of them by far).  The table never shrinks; its cost is
 * kernel memory, 8 bytes a slot. */
static void reserve_fd_table(int from, uint64_t budget)
{
	struct rlimit rl;
	uint64_t want = (uint64_t)from + budget + 64;
	int fd;

	if (from < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && want >= rl.rlim_cur)
		want = rl.rlim_cur - 1;
	if (want > INT_MAX)
		want = INT_MAX;
	fd = fcntl(from, F_DUPFD_CLOEXEC, (int)want);
	if (fd >= 0)
		close(fd);
}

/* DATA_DIR when none was given. */
static int default_data_dir(char *buf, size_t size)
{
	const char *env = getenv("FLUXFS_DATA"), *home;
	int n;

	if (env && *env)
		n = snprintf(buf, size, "%s", env);
	else if ((env = getenv("XDG_DATA_HOME")) && *env)
		n = snprintf(buf, size, "%s/fluxfs", env);
	else if ((home = getenv("HOME")) && *home)
		n = snprintf(buf, size, "%s/.local/share/fluxfs", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct registry *reg = NULL;
	struct cmdline cl;
	char datadir[PATH_MAX], fsname[PATH_MAX + 32];
	const char *mnt;
	int ret = 1, r;

	memset(&cl, 0, sizeof(cl));
	config_defaults(&cl.cfg);
	cl.cfg.set = 0;
	if (fuse_opt_parse(&args, &cl, opts, opt_proc) < 0)
		goto out_args;
	if (cl.help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (cl.version) {
		printf("fluxfs %s (libfuse %s)\n", PACKAGE_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out_args;
	}
	if (cl.bad || mirror_configure() < 0)
		goto out_args;
	if (cl.default_permissions && cl.no_default_permissions) {
		fprintf(stderr,
			"fluxfs: default_permissions and "
			"no_default_permissions contradict each other\n");
		goto out_args;
	}
	if (cl.allow_other && !cl.default_permissions &&
	    !cl.no_default_permissions)
		fuse_opt_add_arg(&args, "-odefault_permissions");
	if (cl.npos == 0) {
		fprintf(stderr, "fluxfs: missing mount point\n"
				"usage: fluxfs [-f] [-d] [-o opts] [DATA_DIR] "
				"MOUNTPOINT\n");
		goto out_args;
	}
	if (cl.npos > 2) {
		fprintf(stderr, "fluxfs: too many arguments\n");
		goto out_args;
	}
	mnt = cl.pos[cl.npos - 1];
	if (cl.npos == 2) {
		snprintf(datadir, sizeof(datadir), "%s", cl.pos[0]);
	} else if (default_data_dir(datadir, sizeof(datadir)) < 0) {
		fprintf(stderr, "fluxfs: no DATA_DIR given and neither "
				"$FLUXFS_DATA nor $HOME is set\n");
		goto out_args;
	}
	if (access(mnt, F_OK) < 0) {
		fprintf(stderr, "fluxfs: mount point '%s' does not exist\n",
			mnt);
		goto out_args;
	}
	/* After the user's options: libfuse wants the value init() sets. */
	fuse_opt_add_arg(&args, FS_MAX_READ_OPT);
	if (!strchr(datadir, ',')) {
		snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=fluxfs",
			 datadir);
		fuse_opt_add_arg(&args, fsname);
	}

	/* Test builds only (no-ops otherwise): crashsim records what a power
	 * cut would lose, and FLUXFS_FAULTS, stacked above it, fails chosen
	 * I/O calls from here on, recovery included; fault.c logs the spec. */
	if (powercut_setup() < 0)
		goto out_args;
	if (fault_init_from_env() < 0)
		goto out_args;
	raise_nofile();
	r = registry_open(datadir, &cl.cfg, fs_hooks(), &reg);
	if (r < 0)
		goto out_args;
	if (cl.fd_budget)
		registry_set_fd_budget(reg, cl.fd_budget);
	if (cl.metrics_mem)
		fs_set_metrics_mem(cl.metrics_mem);
	if (cl.listing_mem)
		fs_set_listing_mem(cl.listing_mem);
	fs_setup(reg);
	se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), NULL);
	if (!se)
		goto out_registry;
	if (fuse_set_signal_handlers(se) < 0)
		goto out_session;
	if (fuse_session_mount(se, mnt) < 0)
		goto out_signals;
	if (fuse_daemonize(cl.foreground) < 0)
		goto out_unmount;
	if (!cl.foreground)
		diag_use_syslog("fluxfs");
	registry_note_pid(reg);
	/* after fuse_daemonize: a fork copies only the slots in use */
	reserve_fd_table(fuse_session_fd(se), registry_fd_budget(reg));
	if (powercut_start() < 0)
		goto out_unmount;
	if (fs_start(se) < 0) {
		diag_err("cannot start the daemon's threads");
		goto out_unmount;
	}
	if (mirror_start(reg, fs_appended_elsewhere) < 0)
		goto out_stop;
	diag_info("serving '%s' at '%s'", datadir, mnt);
	/* After daemonizing, like every line of a running daemon: the
	 * mount command prints nothing when all is well. */
	diag_info("descriptor budget for open partitions: %llu",
		  (unsigned long long)registry_fd_budget(reg));
	if (cl.allow_other && cl.no_default_permissions)
		diag_warn("allow_other with no_default_permissions: every user "
			  "may read, append to, remove and chmod every "
			  "partition of '%s'",
			  mnt);
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_stop;
	fuse_loop_cfg_set_clone_fd(loop, 0);
	/* fsyncs wait for the disk in a worker thread each, and a flush
	 * covers every fsync waiting when it starts (group commit): with
	 * libfuse's default of 10 workers, 64 writers' fsyncs queued in the
	 * kernel and were flushed ten at a time.  As many stay idle, or
	 * libfuse ends and starts threads all the time under such a load
	 * (360 clone3 calls in 2 s with 10 idle threads kept). */
	fuse_loop_cfg_set_idle_threads(loop, FLUXFS_IDLE_THREADS);
	fuse_loop_cfg_set_max_threads(loop, FLUXFS_MAX_THREADS);
	r = fuse_session_loop_mt(se, loop);
	ret = r < 0 ? 1 : 0;
	fuse_loop_cfg_destroy(loop);
out_stop:
	mirror_stop();
	fs_stop();
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_registry:
	r = registry_close(reg);
	if (r < 0)
		ret = 1;
	else if (se && ret == 0)
		diag_info("unmounted '%s', every partition flushed", datadir);
	if (fault_count() > 0)
		diag_info("fault injection: %llu faults injected",
			  (unsigned long long)fault_count());
out_args:
	fuse_opt_free_args(&args);
	return ret;
}
