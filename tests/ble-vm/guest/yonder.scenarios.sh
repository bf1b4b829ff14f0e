# Scenarios that run yonder nodes on the virtual controllers (sourced by
# guest.sh). Each node gets its own controller, data directory, log and
# `events --json` follower; the helpers below wait on those files.

Y=$SHARE/yonder
YDIR=/tmp/yonder

# ynode NAME HCI [CONFIG_LINES...]: starts a node with a BLE link on HCI
# ("-" for none) and the given extra lines in its configuration file.
ynode() {
	local name=$1 hci=$2
	shift 2
	mkdir -p "$YDIR/$name"
	{
		echo "[lan]"
		echo "enabled = false"
		for l in "$@"; do echo "$l"; done
	} >"$YDIR/$name.toml"
	# Sections given whole ("[lan]...") replace the default one.
	if printf '%s\n' "$@" | grep -q '^\[lan\]'; then
		printf '%s\n' "$@" >"$YDIR/$name.toml"
	fi
	local links=()
	[ "$hci" != - ] && links=(--link "ble=$hci")
	RUST_LOG=${RUST_LOG:-info,yonder_link=debug} bg "$SCEN_DIR/$name.log" \
		"$Y" --data-dir "$YDIR/$name" up --nick "$name" --config "$YDIR/$name.toml" "${links[@]}"
	local i
	for i in $(seq 100); do
		"$Y" --data-dir "$YDIR/$name" status >/dev/null 2>&1 && break
		sleep 0.2
	done
	"$Y" --data-dir "$YDIR/$name" status >/dev/null 2>&1 || fail "$name did not start: $(tail -n 3 "$SCEN_DIR/$name.log")" || return 1
	bg "$SCEN_DIR/$name.events" "$Y" --data-dir "$YDIR/$name" events --json
}

# ystop NAME: stops a node politely (SIGTERM), as a user's Ctrl-C would.
ystop() {
	local pid
	pid=$(pgrep -f -- "--data-dir $YDIR/$1 up") || return 0
	kill $pid
	for _ in $(seq 50); do kill -0 $pid 2>/dev/null || return 0; sleep 0.1; done
	kill -9 $pid 2>/dev/null
}

ycli() {
	local name=$1
	shift
	"$Y" --data-dir "$YDIR/$name" "$@"
}

yid() { ycli "$1" id --json | sed -n 's/.*"peer_id": *"\([0-9a-f]*\)".*/\1/p'; }

# ypeer NAME PEERID [direct|any] [SECONDS]: until NAME knows PEERID.
ypeer() {
	local want=${3:-direct} i
	for i in $(seq $((${4:-60} * 2))); do
		local p
		p=$(ycli "$1" peers --json 2>/dev/null | tr '{' '\n' | grep "\"peer_id\":\"$2\"")
		if [ -n "$p" ]; then
			[ "$want" = any ] && return 0
			[ "$want" = direct ] && echo "$p" | grep -q '"direct":true' && return 0
			[ "$want" = indirect ] && echo "$p" | grep -q '"direct":false' && return 0
		fi
		sleep 0.5
	done
	return 1
}

# yevent NAME KIND ID [SECONDS]: until NAME's event stream has KIND for message ID.
yevent() {
	wait_for "$SCEN_DIR/$1.events" "\"kind\":\"$2\",\"id\":\"$3\"" "${4:-60}"
}

# The 4 KiB text: random hex, so compression cannot shrink it below one frame.
big_text() { head -c 2048 /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }

# Public, private with receipts, and a 4 KiB message from $1 to $2 (by nick).
exchange() {
	local from=$1 to=$2 id text
	text="hello from $from $RANDOM"
	id=$(ycli "$from" say "$text") || fail "$from say failed" || return 1
	yevent "$to" public_message "$id" || fail "public message $from→$to not received" || return 1
	echo "INFO public $from→$to ok"
	text="secret for $to $RANDOM"
	id=$(ycli "$from" msg "$to" "$text") || fail "$from msg failed" || return 1
	yevent "$to" private_message "$id" || fail "private message $from→$to not received" || return 1
	grep -F "\"id\":\"$id\"" "$SCEN_DIR/$to.events" | grep -qF "$text" || fail "private text garbled" || return 1
	ycli "$to" read "$(yid "$from")" "$id" >/dev/null || fail "$to read failed" || return 1
	yevent "$from" delivered "$id" || fail "no delivered receipt at $from" || return 1
	yevent "$from" read "$id" || fail "no read receipt at $from" || return 1
	echo "INFO private $from→$to with delivered and read receipts ok"
	text=$(big_text)
	id=$(ycli "$from" say "$text") || fail "$from say (4 KiB) failed" || return 1
	yevent "$to" public_message "$id" 90 || fail "4 KiB message $from→$to not received" || return 1
	grep -F "\"id\":\"$id\"" "$SCEN_DIR/$to.events" | grep -qF "$text" || fail "4 KiB text garbled" || return 1
	echo "INFO 4 KiB $from→$to ok"
}

# Frames each link carried, from the node logs (for the console summary).
link_summary() {
	local n
	for n in "$@"; do
		echo "LINK $n: $(grep -c 'BLE link up' "$SCEN_DIR/$n.log") BLE links made, payloads $(grep -o 'payload=[0-9]*' "$SCEN_DIR/$n.log" | sort -u | tr '\n' ' ')"
	done
}

# Two nodes: everything, then a restart.
scenario_yonder_two() {
	ynode alice hci0 || return 1
	ynode bob hci1 || return 1
	local a b
	a=$(yid alice) b=$(yid bob)
	ypeer alice "$b" direct 90 || fail "alice never saw bob directly" || return 1
	ypeer bob "$a" direct 30 || fail "bob never saw alice directly" || return 1
	exchange alice bob || return 1
	exchange bob alice || return 1
	restart_and_go_on bob alice || return 1
	link_summary alice bob
}

# restart_and_go_on NODE OTHER: NODE stops and starts again; OTHER sees it
# leave, then come back over a new link, and messages flow both ways.
restart_and_go_on() {
	local n=$1 o=$2 hci nid
	hci=$(tr '\0' ' ' </proc/"$(pgrep -f -- "--data-dir $YDIR/$n up")"/cmdline | sed -n 's/.*ble=\(hci[0-9]*\).*/\1/p')
	nid=$(yid "$n")
	local before
	before=$(grep -c 'BLE link up' "$SCEN_DIR/$o.log")
	ystop "$n"
	pkill -f -- "--data-dir $YDIR/$n events" 2>/dev/null
	wait_for "$SCEN_DIR/$o.events" "\"kind\":\"peer_down\",\"peer_id\":\"$nid\"" 30 ||
		fail "$o did not see $n leave" || return 1
	mv "$SCEN_DIR/$n.log" "$SCEN_DIR/$n.before-restart.log"
	mv "$SCEN_DIR/$n.events" "$SCEN_DIR/$n.before-restart.events"
	ynode "$n" "$hci" || return 1
	ypeer "$o" "$nid" direct 90 || fail "$o did not see $n again after its restart" || return 1
	wait_for "$SCEN_DIR/$o.log" 'BLE link up' 1
	[ "$(grep -c 'BLE link up' "$SCEN_DIR/$o.log")" -gt "$before" ] || fail "$o made no new link to $n" || return 1
	local id
	id=$(ycli "$n" say "back again") || return 1
	yevent "$o" public_message "$id" || fail "after restart: $n→$o not received" || return 1
	id=$(ycli "$o" msg "$n" "welcome back") || return 1
	yevent "$n" private_message "$id" || fail "after restart: private $o→$n not received" || return 1
	echo "INFO $n restarted; $o reconnected and messages flow both ways"
}

# Three nodes on three controllers, each sees the other two directly.
scenario_yonder_three() {
	ynode alice hci0 || return 1
	ynode bob hci1 || return 1
	ynode carol hci2 || return 1
	local a b c
	a=$(yid alice) b=$(yid bob) c=$(yid carol)
	ypeer alice "$b" direct 90 || fail "alice never saw bob directly" || return 1
	ypeer alice "$c" direct 90 || fail "alice never saw carol directly" || return 1
	ypeer bob "$c" direct 90 || fail "bob never saw carol directly" || return 1
	ypeer carol "$a" direct 30 || fail "carol never saw alice directly" || return 1
	exchange alice carol || return 1
	exchange bob alice || return 1
	exchange carol bob || return 1
	restart_and_go_on carol alice || return 1
	ypeer bob "$c" direct 60 || fail "bob did not see carol again" || return 1
	link_summary alice bob carol
}

# A relay path: alice and carol ignore each other's controller, so alice's
# messages reach carol only through bob.
scenario_yonder_relay() {
	local h1 h2
	h1=$(addr_of hci1) h2=$(addr_of hci2)
	# bob has the lowest address, so it is bob that dials both ends.
	ynode bob hci0 || return 1
	ynode alice hci1 "[ble]" "ignore = [\"$h2\"]" || return 1
	ynode carol hci2 "[ble]" "ignore = [\"$h1\"]" || return 1
	local a c
	a=$(yid alice) c=$(yid carol)
	ypeer alice "$c" indirect 90 || fail "alice never learnt of carol through bob" || return 1
	ypeer carol "$a" indirect 60 || fail "carol never learnt of alice through bob" || return 1
	exchange alice carol || return 1
	# Still no direct link between them.
	ypeer alice "$c" indirect 1 || fail "alice counts carol as a neighbour" || return 1
	link_summary alice bob carol
}

# Mixed links: lan-only (loopback TCP) ↔ mid (LAN + BLE) ↔ ble-only.
scenario_yonder_mixed() {
	ynode lanonly - "[lan]" "interfaces = []" "listen = \"127.0.0.1:7470\"" "[ble]" "enabled = false" || return 1
	# Both links from the file (no --link flags): the [ble] section names the adapter.
	ynode mid - "[lan]" "interfaces = []" "listen = \"127.0.0.1:7471\"" "peers = [\"127.0.0.1:7470\"]" \
		"[ble]" "enabled = true" "adapter = \"hci1\"" || return 1
	ynode bleonly hci0 || return 1
	local l b
	l=$(yid lanonly) b=$(yid bleonly)
	ypeer lanonly "$b" indirect 90 || fail "the LAN-only node never learnt of the BLE-only one" || return 1
	ypeer bleonly "$l" indirect 60 || fail "the BLE-only node never learnt of the LAN-only one" || return 1
	exchange lanonly bleonly || return 1
	exchange bleonly lanonly || return 1
	link_summary mid bleonly
}

# An independent BlueZ client (Python over D-Bus, not our code) finds a
# yonder node by the service UUID, checks the characteristic's properties,
# subscribes, and collects what the node notifies. Its announce's signature
# is verified on the host afterwards (verify-announce.py, with the
# `cryptography` package), as the guest has no Ed25519 library.
scenario_independent_client() {
	ynode alice hci0 || return 1
	# Like a phone, the client writes once after subscribing (a phone writes
	# its announce): the node makes a link at a central's first write, and
	# announces itself on every new link. One byte is no packet; it is dropped.
	timeout 120 python3 "$SHARE/bitchat-client.py" --adapter hci1 --timeout 60 --duration 12 --write 00 \
		>"$SCEN_DIR/client.out" 2>"$SCEN_DIR/client.err"
	local rc=$?
	grep -vE '^NOTIFY' "$SCEN_DIR/client.out" | sed 's/^/INFO /'
	echo "INFO $(grep -c '^NOTIFY' "$SCEN_DIR/client.out") notifications received"
	[ $rc -eq 0 ] || fail "bitchat-client exit $rc: $(tail -n 2 "$SCEN_DIR/client.out" "$SCEN_DIR/client.err" | tr '\n' ' ')" || return 1
	grep -q '^NOTIFY 0[12]01' "$SCEN_DIR/client.out" || fail "no announce among the notifications" || return 1
}

# Clear errors: a missing adapter stops a node that asked for it, with the
# adapters that do exist named; an optional BLE link leaves the LAN going.
scenario_yonder_errors() {
	mkdir -p "$YDIR/err"
	printf '[lan]\nenabled = false\n' >"$YDIR/err.toml"
	timeout 30 "$Y" --data-dir "$YDIR/err" up --config "$YDIR/err.toml" --link ble=hci9 >"$SCEN_DIR/err.out" 2>&1
	local rc=$?
	cat "$SCEN_DIR/err.out"
	[ $rc -ne 0 ] || fail "a missing adapter did not stop the node" || return 1
	grep -q 'adapter hci9 not found (adapters present: hci0, hci1, hci2' "$SCEN_DIR/err.out" || fail "unclear error for a missing adapter" || return 1
	echo "INFO missing adapter: $(grep -o 'Bluetooth adapter.*' "$SCEN_DIR/err.out" | head -n1)"
	# BlueZ gone: the optional BLE link is skipped, the LAN link still runs.
	kill "$BLUETOOTHD_PID"; wait "$BLUETOOTHD_PID" 2>/dev/null; BLUETOOTHD_PID=
	ynode lanonly - "[lan]" "interfaces = []" "listen = \"127.0.0.1:7480\"" || return 1
	wait_for "$SCEN_DIR/lanonly.log" 'no BLE link: ' 10 || fail "no notice that BLE is off" || return 1
	wait_for "$SCEN_DIR/lanonly.log" 'LAN link up' 10 || fail "the LAN link did not start" || return 1
	echo "INFO BlueZ missing: $(grep -o 'no BLE link: .*' "$SCEN_DIR/lanonly.log" | head -n1)"
	grep -q 'BlueZ not reachable' "$SCEN_DIR/lanonly.log" || fail "BlueZ being gone is not said plainly" || return 1
}
