#!/bin/sh
# A real S3-compatible server for tests and benchmarks: a one-machine Ceph
# cluster (one monitor, one memstore OSD, one RADOS Gateway) on loopback, all
# state in one folder. See ../../shared/notes/s3-test-server.md for the facts
# it relies on.
#
#   scripts/s3-server.sh install           install radosgw, ceph-mon, ceph-osd (apt-get) if missing
#   scripts/s3-server.sh start <dir>       start a cluster in <dir> (created) or reuse the one running
#                                          there; prints S3_ENDPOINT=, AWS_ACCESS_KEY_ID=,
#                                          AWS_SECRET_ACCESS_KEY=, AWS_REGION= lines
#   scripts/s3-server.sh stop <dir>        kill its daemons and remove <dir>
#   scripts/s3-server.sh status <dir>      exit 0 and print the lines above when it answers
#
# Idempotent: start on a running cluster only prints its settings; stop on a
# stopped one does nothing. Needs root for the install only.
set -eu

ACCESS_KEY=WALNUTTESTACCESSKEY0
SECRET_KEY=walnut-test-secret-key-0000000000000000
REGION=us-east-1

die() { echo "s3-server: $*" >&2; exit 1; }

install() {
  if command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1 && command -v ceph-osd >/dev/null 2>&1; then
    return 0
  fi
  # One installer at a time (test files start in parallel).
  exec 9>/tmp/walnut-s3-install.lock
  flock 9
  if ! command -v radosgw >/dev/null 2>&1 || ! command -v ceph-mon >/dev/null 2>&1 || ! command -v ceph-osd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "radosgw, ceph-mon and ceph-osd are not installed, and installing them needs root"
    echo "s3-server: installing radosgw, ceph-mon, ceph-osd (about 30 s)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd >&2
  fi
  flock -u 9
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

answers() {
  node -e "require('http').get({host:'127.0.0.1',port:$1,path:'/',timeout:1000},(r)=>{r.resume();process.exit(0)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))" 2>/dev/null
}

settings() {
  echo "S3_ENDPOINT=http://127.0.0.1:$(cat "$DIR/rgw.port")"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "AWS_REGION=$REGION"
}

running() {
  [ -f "$DIR/rgw.port" ] && alive "$DIR/mon.pid" && alive "$DIR/osd.pid" && alive "$DIR/rgw.pid" && answers "$(cat "$DIR/rgw.port")" && [ -f "$DIR/user.done" ]
}

stop() {
  for d in rgw osd mon; do
    if [ -f "$DIR/$d.pid" ]; then kill -9 "$(cat "$DIR/$d.pid")" 2>/dev/null || true; fi
  done
  rm -rf "$DIR"
}

start() {
  if running; then settings; return 0; fi
  [ -d "$DIR" ] && stop
  install
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon" "$DIR/osd"
  DIR=$(cd "$DIR" && pwd)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  conf="$DIR/ceph.conf"
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms mon client mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = /dev/null
paxos propose interval = 0.05
paxos min wait = 0.01
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
rgw data = $DIR/rgw

[client.rgw.walnut]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
EOF
  echo "$rgw_port" >"$DIR/rgw.port"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >"$DIR/log/setup.log" 2>&1
  ceph-mon -c "$conf" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/setup.log" 2>&1
  ceph-mon -c "$conf" -i a -f >>"$DIR/log/mon.out" 2>&1 &
  echo $! >"$DIR/mon.pid"
  id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid" 2>>"$DIR/log/setup.log") || die "monitor did not answer; see $DIR/log"
  mkdir -p "$DIR/osd/ceph-$id"
  ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/setup.log" 2>&1
  ceph-osd -c "$conf" -i "$id" -f >>"$DIR/log/osd.out" 2>&1 &
  echo $! >"$DIR/osd.pid"
  radosgw -c "$conf" -n client.rgw.walnut -f >>"$DIR/log/rgw.out" 2>&1 &
  echo $! >"$DIR/rgw.pid"
  i=0
  until answers "$rgw_port"; do
    i=$((i + 1))
    [ $i -lt 600 ] || die "radosgw did not answer on port $rgw_port within 60 s; see $DIR/log"
    alive "$DIR/rgw.pid" || die "radosgw exited; see $DIR/log"
    sleep 0.1
  done
  timeout 60 radosgw-admin -c "$conf" -n client.rgw.walnut user create --uid=walnut --display-name=walnut \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$DIR/log/setup.log" 2>&1 || die "could not create the S3 user; see $DIR/log"
  touch "$DIR/user.done"
  settings
}

cmd=${1:-}
case "$cmd" in
  install) install ;;
  start | stop | status)
    [ $# -ge 2 ] || die "usage: $0 $cmd <dir>"
    DIR=$2
    case "$cmd" in
      start) start ;;
      stop) stop ;;
      status) if running; then settings; else exit 1; fi ;;
    esac
    ;;
  *) die "usage: $0 install | start <dir> | stop <dir> | status <dir>" ;;
esac
