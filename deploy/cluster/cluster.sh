#!/usr/bin/env bash
# A three-node RabbitMQ cluster on one machine, from the installed rabbitmq-server, for
# trying lgsp's failover and for the cluster tests. Each node has its own node name,
# ports, data and log folders and Erlang cookie under DIR; the machine's own node
# (rabbit@..., port 5672) is never touched.
#
#   deploy/cluster/cluster.sh up   [DIR]   start three nodes and form the cluster
#   deploy/cluster/cluster.sh urls [DIR]   print broker.urls for lgsp (one per line)
#   deploy/cluster/cluster.sh down [DIR]   stop the nodes and remove DIR
#   deploy/cluster/cluster.sh ctl DIR N ARGS...   rabbitmqctl on node N (0, 1, 2)
#
# DIR defaults to ./target/lgsp-cluster. LGSP_CLUSTER_PORT (default 5701) is the first
# node's AMQP port; the others follow (5702, 5703); Erlang distribution uses
# LGSP_CLUSTER_PORT+20000.. . Node names are lgsp-c<port>@localhost. RABBITMQ_BIN is the
# folder of rabbitmq-server and rabbitmqctl (default: Debian's /usr/lib/rabbitmq/bin).
set -euo pipefail

cmd=${1:-}
dir=${2:-target/lgsp-cluster}
base=${LGSP_CLUSTER_PORT:-5701}
bin=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

node_name() { echo "lgsp-c$((base + $1))@localhost"; }

env_of() { # node index -> the environment of its tools
  local i=$1 d="$dir/n$i"
  echo HOME="$dir/erlang" RABBITMQ_NODENAME="$(node_name "$i")" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
}

ctl() { # node index, args...
  local i=$1; shift
  env $(env_of "$i") "$bin/rabbitmqctl" -n "$(node_name "$i")" "$@"
}

wait_port() {
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "no node listens on port $1 after 60 s; see $dir/n*/log" >&2
  return 1
}

up() {
  mkdir -p "$dir/erlang"
  if [ ! -f "$dir/erlang/.erlang.cookie" ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/erlang/.erlang.cookie"
    chmod 400 "$dir/erlang/.erlang.cookie"
  fi
  echo "ERL_EPMD_ADDRESS=127.0.0.1" > "$dir/rabbitmq-env.conf"
  for i in 0 1 2; do
    local d="$dir/n$i" port=$((base + i))
    mkdir -p "$d"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$port" > "$d/rabbitmq.conf"
    echo "[]." > "$d/enabled_plugins"
    env $(env_of "$i") \
      RABBITMQ_DIST_PORT=$((base + 20000 + i)) \
      RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
      RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
      RABBITMQ_PID_FILE="$d/pid" \
      "$bin/rabbitmq-server" -detached
  done
  for i in 0 1 2; do wait_port $((base + i)); done
  for i in 1 2; do
    ctl "$i" stop_app >/dev/null
    ctl "$i" join_cluster "$(node_name 0)" >/dev/null
    ctl "$i" start_app >/dev/null
  done
  for i in 0 1 2; do wait_port $((base + i)); done
  ctl 0 await_online_nodes 3 --timeout 60 >/dev/null
  echo "cluster of 3 nodes up: $(node_name 0) $(node_name 1) $(node_name 2)"
}

urls() {
  for i in 0 1 2; do echo "amqp://guest:guest@127.0.0.1:$((base + i))/%2f"; done
}

down() {
  for i in 0 1 2; do
    ctl "$i" shutdown >/dev/null 2>&1 || true
    if [ -f "$dir/n$i/pid" ]; then kill -KILL "$(cat "$dir/n$i/pid")" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
}

case "$cmd" in
  up) up ;;
  urls) urls ;;
  down) down ;;
  ctl) shift 2; ctl "$@" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
