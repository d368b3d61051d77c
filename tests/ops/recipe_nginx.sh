#!/bin/bash
# recipe_nginx.sh - doc/recipes.md "nginx": access_log straight into a
# partition.  nginx's master (root) opens the log with O_APPEND and its
# workers write one line per request through that descriptor: each
# request is one message.  "Rotation" is a rename inside the topic and
# nginx -s reopen (SIGUSR1): the master opens the name again, fluxfs
# creates a fresh partition, the master chowns it to the worker user and
# the workers open it again themselves, as that user: so the mount must
# be shared (allow_other) and its path searchable by that user, else the
# workers' reopen fails with EACCES and requests are lost from the log.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
. "$top_srcdir/tests/mount/lib.sh"
. "$top_srcdir/tests/mount/util.sh"
. "$top_srcdir/tests/ops/svc.sh"

need_packages nginx-light curl
mount_start -o allow_other
svc_trap
chmod 755 "$WORK"
mkdir "$MNT/web" || fail "mkdir topic"
PORT=$(free_port) || fail "no free port"
mkdir -m 755 "$WORK/nginx"
# The recipe's lines, as doc/recipes.md shows them, around a test server.
cat >"$WORK/nginx/nginx.conf" <<CONF
user www-data;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	log_format fluxfs '\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent';
	access_log $MNT/web/access fluxfs;
	server {
		listen 127.0.0.1:$PORT;
		location / { return 200 "ok\n"; }
	}
}
CONF
nginx -t -c "$WORK/nginx/nginx.conf" >"$WORK/nginx-t.log" 2>&1 ||
	fail "nginx -t: $(cat "$WORK/nginx-t.log")"
svc_start nginx nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
wait_listen 10 "$PORT" nginx

for i in $(seq 1 50); do
	curl -fsS "http://127.0.0.1:$PORT/req-$i" >/dev/null || fail "request $i"
done
count() { [ "$(grep -c "$2" "$1" 2>/dev/null)" -eq "$3" ]; }
wait_for 5 count "$MNT/web/access" '"GET /req-[0-9]* HTTP/1.1" 200' 50 ||
	fail "access log holds $(grep -c GET "$MNT/web/access") of 50 requests"
xassert "$MNT/web/access" next_offset 50 "one message per request"
for i in 1 25 50; do
	grep -q "\"GET /req-$i HTTP/1.1\" 200 3\$" "$MNT/web/access" ||
		fail "request $i is not a whole line in the access log"
done

# Rotation: rename inside the topic, then reopen.
mv "$MNT/web/access" "$MNT/web/access.1" || fail "rename the partition"
nginx -c "$WORK/nginx/nginx.conf" -s reopen || fail "nginx -s reopen"
owned() { [ "$(stat -c %U "$1" 2>/dev/null)" = "$2" ]; }
wait_for 5 owned "$MNT/web/access" www-data ||
	fail "nginx did not reopen the access log and chown it to its workers' user: $(ls -l "$MNT/web"; tail -n 3 "$WORK/nginx/error.log")"
for i in $(seq 1 10); do
	curl -fsS "http://127.0.0.1:$PORT/after-$i" >/dev/null || fail "request after reopen $i"
done
wait_for 5 count "$MNT/web/access" '"GET /after-' 10 ||
	fail "the new partition has $(grep -c after- "$MNT/web/access") of 10 requests; nginx: $(tail -n 3 "$WORK/nginx/error.log")"
count "$MNT/web/access.1" '"GET /req-' 50 || fail "the renamed partition lost lines"
grep -q after- "$MNT/web/access.1" && fail "requests after reopen went to the old partition"
grep -q '\[error\]\|\[crit\]\|\[alert\]\|\[emerg\]' "$WORK/nginx/error.log" &&
	fail "nginx logged errors: $(grep -m3 'error\|crit\|alert\|emerg' "$WORK/nginx/error.log")"
svc_stop nginx
log "ok"
exit 0
