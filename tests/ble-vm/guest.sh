#!/bin/bash
# Runs inside the BLE test VM (started by blevm-init from the 9p share).
# Brings up a virtual BLE world (hci_vhci + btvirt + one bluetoothd), then
# runs the requested scenarios. Each scenario prints `PASS name` or
# `FAIL name: reason`; the script exits nonzero if any failed.
#
# Arguments come from /mnt/share/args (one word per line, written by ./run):
# scenario names, plus `trace` to record btmon snoop files per scenario.
set -uo pipefail  # no -e: a failing scenario must not stop the others

SHARE=/mnt/share
LOGS=$SHARE/logs
NCTRL=${NCTRL:-6}          # btvirt controllers: hci0..hci5 (btdev allows up to 16)
DEFAULT_SCENARIOS="bluez-smoke yonder-two yonder-three yonder-relay yonder-mixed independent-client yonder-errors"
SCEN_TIMEOUT=${SCEN_TIMEOUT:-240}   # seconds per scenario
BLUETOOTHD=/usr/libexec/bluetooth/bluetoothd
export PYTHONUNBUFFERED=1
mkdir -p "$LOGS"

say() { echo "guest: $*"; }

args=()
[ -f "$SHARE/args" ] && mapfile -t args < <(grep -v '^\s*$' "$SHARE/args")
TRACE=${TRACE:-0}
# The image carries a fixed btvirt in /usr/local/bin (build-image,
# btdev-conn-handles.patch); `btvirt=stock` selects Debian's for comparison.
BTVIRT=/usr/local/bin/btvirt
[ -x "$BTVIRT" ] || BTVIRT=/usr/bin/btvirt
DEFAULT_CONF_FILE=
scenarios=()
for a in "${args[@]}"; do
	case $a in
	trace) TRACE=1 ;;
	btvirt=stock) BTVIRT=/usr/bin/btvirt ;;
	btvirt=*) BTVIRT=$SHARE/${a#btvirt=} ;;        # try another btvirt build from the share
	conf=*) DEFAULT_CONF_FILE=$SHARE/${a#conf=} ;;  # bluetoothd main.conf from the share
	debug) BLUETOOTHD_DEBUG=1 ;;
	*) scenarios+=("$a") ;;
	esac
done
[ ${#scenarios[@]} -gt 0 ] || read -ra scenarios <<<"$DEFAULT_SCENARIOS"

# ---------- BLE world ----------

modprobe hci_vhci || { echo "FAIL setup: modprobe hci_vhci"; exit 1; }  # creates /dev/vhci
mkdir -p /run/dbus
dbus-daemon --system --fork || { echo "FAIL setup: dbus-daemon"; exit 1; }

# Default bluetoothd config. Keep it explicit so runs don't depend on the
# image's /etc/bluetooth/main.conf; scenarios may pass their own.
DEFAULT_CONF=/run/blevm-main.conf
cat >"$DEFAULT_CONF" <<'CONF'
[Policy]
# Power every btvirt controller on as soon as bluetoothd sees it.
AutoEnable=true
CONF
[ -n "$DEFAULT_CONF_FILE" ] && DEFAULT_CONF=$DEFAULT_CONF_FILE

BTVIRT_PID= BLUETOOTHD_PID= BTMON_PID=
bt_stop() {
	for p in $BTMON_PID $BLUETOOTHD_PID $BTVIRT_PID; do kill "$p" 2>/dev/null; done
	for p in $BTMON_PID $BLUETOOTHD_PID $BTVIRT_PID; do wait "$p" 2>/dev/null; done
	BTVIRT_PID= BLUETOOTHD_PID= BTMON_PID=
}

# Fresh controllers + fresh bluetoothd for every scenario: killing btvirt
# removes the hci devices (and all links), and an empty /var/lib/bluetooth
# means no device is reloaded from cache (a cached device reports its stored
# UUIDs, which breaks UUID-filtered discovery).
# Usage: bt_start LOGDIR [main.conf] [extra btvirt args...]
bt_start() {
	local dir=$1 conf=${2:-$DEFAULT_CONF}
	shift 2 2>/dev/null || shift $#
	bt_stop
	rm -rf /var/lib/bluetooth/*
	if [ "$TRACE" = 1 ]; then
		btmon -w "$dir/btmon.snoop" >/dev/null 2>&1 &
		BTMON_PID=$!
	fi
	"$BTVIRT" "-l$NCTRL" "$@" >"$dir/btvirt.log" 2>&1 &
	BTVIRT_PID=$!
	local i
	for i in $(seq 100); do
		[ -e "/sys/class/bluetooth/hci$((NCTRL - 1))" ] && break
		sleep 0.1
	done
	"$BLUETOOTHD" -n -f "$conf" ${BLUETOOTHD_DEBUG:+-d} >"$dir/bluetoothd.log" 2>&1 &
	BLUETOOTHD_PID=$!
	# Wait until bluetoothd exports all adapters and each one is powered.
	for i in $(seq 100); do
		local list powered=0
		list=$(bluetoothctl list 2>/dev/null | awk '/^Controller/ {print $2}')
		if [ "$(echo "$list" | grep -c .)" -ge "$NCTRL" ]; then
			for addr in $list; do
				bluetoothctl show "$addr" 2>/dev/null | grep -q 'Powered: yes' && powered=$((powered + 1))
			done
			[ "$powered" -ge "$NCTRL" ] && return 0
		fi
		sleep 0.2
	done
	echo "adapters not powered after 20 s: $(bluetoothctl list 2>&1 | tr '\n' ';')"
	return 1
}

# ---------- helpers for scenarios ----------

# Background helpers started by a scenario; killed when the scenario ends.
BG_PIDS=()
bg() { # bg LOGFILE CMD... : run in background, stdout+stderr to LOGFILE
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	BG_PIDS+=($!)
}
bg_kill() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	BG_PIDS=()
}
# wait_for FILE REGEX [SECONDS]: until a log line matches.
wait_for() {
	local i
	for i in $(seq $((${3:-20} * 10))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# Address of hciN as seen by other controllers.
# (btmgmt would wait on its interactive shell here, so ask bluetoothd.)
addr_of() {
	dbus-send --system --print-reply --dest=org.bluez "/org/bluez/$1" \
		org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Address 2>/dev/null |
		sed -n 's/.*string "\(.*\)".*/\1/p'
}
# kill_tree PID: a scenario and everything it started.
kill_tree() {
	# Parent first, so a dying child cannot let the parent run on.
	local c kids
	kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
	kill "$1" 2>/dev/null
	for c in $kids; do kill_tree "$c"; done
}
# fail REASON: record why the current scenario failed (first reason wins).
fail() {
	[ -s "$SCEN_DIR/reason" ] || echo "$*" >"$SCEN_DIR/reason"
	return 1
}

# ---------- scenarios ----------
# Add a scenario by defining scenario_NAME (dashes in NAME become _).
# It runs with $SCEN_DIR as its log directory, after bt_start; return 0 = pass.

# Python-only smoke test of the virtual BLE world and of bitchat-client.py:
# fake peripheral on hci0, independent central on hci1.
scenario_bluez_smoke() {
	bg "$SCEN_DIR/peer.log" python3 "$SHARE/fake-peer.py" --adapter hci0 --payload 0102a5
	wait_for "$SCEN_DIR/peer.log" '^ADVERTISING' 10 || fail "fake-peer did not start advertising" || return 1
	timeout 90 python3 "$SHARE/bitchat-client.py" --adapter hci1 --timeout 40 --duration 3 --write cafe01 \
		>"$SCEN_DIR/client.out" 2>"$SCEN_DIR/client.err"
	local rc=$?
	cat "$SCEN_DIR/client.out"
	[ $rc -eq 0 ] || fail "bitchat-client exit $rc: $(grep -E 'FAIL|ERROR' "$SCEN_DIR/client.out" | head -n1)" || return 1
	grep -q '^NOTIFY 0102a5$' "$SCEN_DIR/client.out" || fail "expected notification 0102a5 not seen" || return 1
	wait_for "$SCEN_DIR/peer.log" '^WRITE cafe01$' 5 || fail "peripheral never saw the write" || return 1
	return 0
}

# Extra scenarios can live in the share (guest/*.scenarios.sh) so guest.sh stays small.
for f in "$SHARE"/*.scenarios.sh; do
	[ -f "$f" ] && . "$f"
done

# ---------- dispatch ----------
failed=0
for name in "${scenarios[@]}"; do
	fn=scenario_${name//-/_}
	# A scenario named again (to repeat it) logs to name.2, name.3, ...
	SCEN_DIR=$LOGS/$name
	i=1
	while [ -e "$SCEN_DIR/.ran" ]; do i=$((i + 1)); SCEN_DIR=$LOGS/$name.$i; done
	mkdir -p "$SCEN_DIR"
	touch "$SCEN_DIR/.ran"
	rm -f "$SCEN_DIR/reason"
	if ! declare -F "$fn" >/dev/null; then
		echo "FAIL $name: no such scenario ($fn)"
		failed=1
		continue
	fi
	say "scenario $name"
	start=$(date +%s%N)
	# Not in $(...): bt_start must set the pids in this shell.
	if ! bt_start "$SCEN_DIR" >"$SCEN_DIR/setup.log"; then
		echo "FAIL $name: setup: $(cat "$SCEN_DIR/setup.log")"
		failed=1
		continue
	fi
	# Subshell + watchdog: a hung helper fails this scenario, not the whole run.
	( "$fn"; r=$?; bg_kill; exit $r ) >"$SCEN_DIR/output.log" 2>&1 &
	spid=$!
	( sleep "$SCEN_TIMEOUT"; echo "scenario timed out after ${SCEN_TIMEOUT}s" >>"$SCEN_DIR/reason"; kill_tree "$spid" ) &
	wpid=$!
	wait "$spid"
	rc=$?
	kill_tree "$wpid"
	wait "$wpid" 2>/dev/null
	ms=$((($(date +%s%N) - start) / 1000000))
	say "scenario $name took $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
	if [ "$TRACE" = 1 ]; then
		# Decode here: the host's btmon may be older than the guest's snoop writer.
		bt_stop
		btmon -T -r "$SCEN_DIR/btmon.snoop" >"$SCEN_DIR/btmon.txt" 2>&1
	fi
	# Summary lines a scenario wants on the console (indented so ./run shows them).
	grep -E '^(LINK|INFO|CONNS) ' "$SCEN_DIR/output.log" | sed 's/^/  | /'
	if [ $rc -eq 0 ]; then
		echo "PASS $name"
	else
		echo "FAIL $name: $(cat "$SCEN_DIR/reason" 2>/dev/null || echo "exit $rc")"
		grep -vE '^(LINK|INFO|CONNS) ' "$SCEN_DIR/output.log" | tail -n 30 | sed 's/^/  | /'
		failed=1
	fi
done
bt_stop
exit $failed
