#!/usr/bin/env bash
# Docker for `make sam-local`: `sam local invoke` runs each function in a container, so
# it needs a Docker daemon and a Lambda base image.
#
#   tools/sam-local-docker.sh start   print the DOCKER_HOST to use, starting a daemon if none runs
#   tools/sam-local-docker.sh image   build the local stand-in base image (once) and print its name
#   tools/sam-local-docker.sh stop    stop the daemon `start` started (by its pidfile), if any
#
# `start` uses a daemon that already answers (DOCKER_HOST, or the default socket). With
# none, and on Debian as root, it installs Debian's docker.io (apt-get) and starts
# dockerd in the background with its own socket, pidfile and data root under the tool
# cache, so it touches no system daemon and images survive between runs (warm runs
# build nothing). vfs and --iptables=false are what works inside an unprivileged CI
# container (no overlayfs, no netfilter); the containers need no NAT, since they only
# talk to the host over the bridge.
#
# `image`: public.ecr.aws/lambda/provided:al2023 cannot be pulled offline, and the
# functions are static Go binaries that need nothing from it. What SAM itself needs of a
# base image is a shell with mv and chmod to add its runtime interface emulator, so the
# stand-in is a rootfs holding only Debian's busybox-static, imported as
# local/provided:al2023.
set -euo pipefail

cache="${TENANTFLOW_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow}"
dir="$cache/docker"
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"
image="${SAM_LOCAL_IMAGE:-local/provided:al2023}"

log() { echo "sam-local-docker: $*" >&2; }

answers() { docker -H "$1" info >/dev/null 2>&1; }

debian_root() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_install() {
	debian_root || { log "cannot install $*: this is not Debian with root; install it yourself"; exit 1; }
	log "installing Debian's $* (apt-get)"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

start() {
	if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return; fi
	if answers unix:///var/run/docker.sock; then echo unix:///var/run/docker.sock; return; fi
	if answers "unix://$sock"; then echo "unix://$sock"; return; fi
	if ! command -v dockerd >/dev/null; then
		debian_root || {
			log "no Docker daemon answers and dockerd is not installed."
			log "Start Docker (or set DOCKER_HOST) and run make sam-local again."
			exit 1
		}
		apt_install docker.io
	fi
	mkdir -p "$dir/data" "$dir/exec"
	log "starting dockerd (socket $sock, data root $dir/data, log $dir/dockerd.log)"
	# setsid: its own session, so a Ctrl-C of make does not reach it mid-start; stop
	# ends it by its pidfile.
	setsid dockerd --host "unix://$sock" --pidfile "$pidfile" --data-root "$dir/data" --exec-root "$dir/exec" \
		--storage-driver=vfs --iptables=false >"$dir/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 1 120); do
		if answers "unix://$sock"; then
			touch "$dir/started-here"
			echo "unix://$sock"
			return
		fi
		sleep 0.5
	done
	log "dockerd did not answer on $sock within 60 s; its log:"
	tail -n 30 "$dir/dockerd.log" >&2
	exit 1
}

build_image() {
	local host="${DOCKER_HOST:?set DOCKER_HOST (tools/sam-local-docker.sh start prints it)}"
	if docker -H "$host" image inspect "$image" >/dev/null 2>&1; then echo "$image"; return; fi
	local busybox=/bin/busybox
	if ! file_is_static "$busybox"; then
		apt_install busybox-static
	fi
	local root
	root="$(mktemp -d)"
	trap 'rm -rf "$root"' RETURN
	mkdir -p "$root/bin" "$root/tmp" "$root/var/task" "$root/var/runtime" "$root/opt" "$root/etc"
	cp "$busybox" "$root/bin/busybox"
	for applet in sh mv cp chmod rm mkdir ls cat; do ln -s busybox "$root/bin/$applet"; done
	chmod 1777 "$root/tmp"
	echo "root:x:0:0:root:/tmp:/bin/sh" >"$root/etc/passwd"
	log "building $image: a rootfs with only busybox-static (stand-in for public.ecr.aws/lambda/provided:al2023)"
	tar -C "$root" -c . | docker -H "$host" import \
		--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /var/task' - "$image" >/dev/null
	echo "$image"
}

# file_is_static: Debian's busybox package is dynamically linked; only busybox-static
# runs in a rootfs without a libc.
file_is_static() {
	[ -x "$1" ] || return 1
	! LC_ALL=C ldd "$1" >/dev/null 2>&1
}

stop() {
	[ -f "$dir/started-here" ] || return 0
	rm -f "$dir/started-here"
	[ -f "$pidfile" ] || return 0
	local pid
	pid="$(cat "$pidfile")"
	log "stopping the dockerd it started (pid $pid)"
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
start) start ;;
image) build_image ;;
stop) stop ;;
*)
	echo "usage: $0 start|image|stop" >&2
	exit 2
	;;
esac
