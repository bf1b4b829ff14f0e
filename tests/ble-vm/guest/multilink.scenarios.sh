# Sourced by guest.sh. Scenarios probing several LE links per btvirt
# controller with the Python peers only (see FINDINGS.md). Each link X->Y
# is bitchat-client.py on hciX connecting to fake-peer.py on hciY; a link
# passes when the client sees the characteristic, an ATT MTU, notifications
# with Y's payload, and Y's peer logs the client's write.

PEER_OPTS=${PEER_OPTS:-}   # e.g. --readvertise (set by the *-readv variants below)
payload_of() { echo "aa0${1#hci}"; }            # what fake-peer on hciN notifies
wfrm_of() { echo "c0${1#hci}${2#hci}"; }         # what client X writes to Y

start_peer() {
	bg "$SCEN_DIR/peer-$1.log" python3 "$SHARE/fake-peer.py" --adapter "$1" --payload "$(payload_of "$1")" $PEER_OPTS
	wait_for "$SCEN_DIR/peer-$1.log" '^ADVERTISING' 15 || fail "fake-peer on $1 did not advertise"
}

# start_link X Y DURATION: client on hciX to the peer on hciY, in background.
start_link() {
	local x=$1 y=$2 addr
	addr=$(addr_of "$y")
	local extra=
	# TIEBREAK=1: only the lower-numbered side initiates; the other waits
	# for that link and runs its GATT client on it.
	[ "${TIEBREAK:-0}" = 1 ] && [ "${x#hci}" -gt "${y#hci}" ] && extra=--wait-incoming
	bg "$SCEN_DIR/link-$x-$y.log" python3 "$SHARE/bitchat-client.py" --adapter "$x" --address "$addr" \
		--timeout 45 --duration "$3" --write "$(wfrm_of "$x" "$y")" --keep-connected $extra
	LINK_PIDS+=("$!")
}

# check_link X Y: print one LINK line, return 0 if every check passed.
check_link() {
	local x=$1 y=$2 l=$SCEN_DIR/link-$1-$2.log p=$SCEN_DIR/peer-$2.log ok=1
	local mtu notes wrote wmtu
	mtu=$(awk '/^MTU/ {print $2}' "$l" | tail -n1)
	notes=$(grep -c "^NOTIFY $(payload_of "$y")\$" "$l")
	wrote=no
	grep -q "^WRITE $(wfrm_of "$x" "$y")\$" "$p" && wrote=yes
	wmtu=$(grep -A1 "^WRITE $(wfrm_of "$x" "$y")\$" "$p" | sed -n 's/.*mtu=\([0-9]*\).*/\1/p' | head -n1)
	grep -q '^OK' "$l" || ok=0
	[ "$notes" -gt 0 ] && [ "$wrote" = yes ] || ok=0
	echo "LINK $x->$y ok=$ok client_mtu=${mtu:-none} notifications=$notes write_seen=$wrote peer_mtu=${wmtu:-none} $(grep -E '^(FAIL|ERROR)' "$l" | head -n1)"
	[ $ok = 1 ]
}

# run_links "X:Y X:Y ..." STAGGER: start links STAGGER s apart, wait, check all.
run_links() {
	local spec=$1 stagger=$2 dur=$3 l x y bad=0
	LINK_PIDS=()
	for l in $spec; do
		start_link "${l%%:*}" "${l##*:}" "$dur"
		sleep "$stagger"
	done
	for p in "${LINK_PIDS[@]}"; do wait "$p"; done
	for l in $spec; do
		check_link "${l%%:*}" "${l##*:}" || bad=$((bad + 1))
	done
	# Handles as the hosts see them (ground truth for the btdev analysis).
	for x in $(echo "$spec" | tr ' :' '\n\n' | sort -u); do
		echo "CONNS $x: $(hcitool -i "$x" con 2>/dev/null | tail -n +2 | tr '\n\t' ' ' || true)"
	done
	[ $bad = 0 ] || fail "$bad link(s) failed"
}

# (1) hci0 central to peripherals on hci1 and hci2.
scenario_multi_1_two_out() {
	start_peer hci1 && start_peer hci2 || return 1
	run_links "hci0:hci1 hci0:hci2" 6 14
}
# (2) peripheral on hci1 with centrals hci0 and hci2.
scenario_multi_2_two_in() {
	start_peer hci1 || return 1
	run_links "hci0:hci1 hci2:hci1" 6 14
}
# (3) hci1 peripheral to hci0 and central to hci2.
scenario_multi_3_in_out() {
	start_peer hci1 && start_peer hci2 || return 1
	run_links "hci0:hci1 hci1:hci2" 6 14
}
# (4) hci0 and hci1 both peripheral and central towards each other.
scenario_multi_4_pair_both() {
	start_peer hci0 && start_peer hci1 || return 1
	run_links "hci0:hci1 hci1:hci0" 0.5 12
}
# (5) three nodes, each peripheral and central to the two others.
scenario_multi_5_mesh3() {
	start_peer hci0 && start_peer hci1 && start_peer hci2 || return 1
	run_links "hci0:hci1 hci0:hci2 hci1:hci0 hci1:hci2 hci2:hci0 hci2:hci1" 0.5 16
}

# Same topologies with the peripheral re-registering its advertisement after
# every incoming connection (see FINDINGS.md).
for n in 1_two_out 2_two_in 3_in_out 4_pair_both 5_mesh3; do
	eval "scenario_multi_${n}_readv() { PEER_OPTS=--readvertise scenario_multi_${n}; }"
done

# The rules from FINDINGS.md together: peripherals re-advertise after each
# incoming connection, and for each pair only the lower-numbered controller
# initiates; the other side's GATT client starts later and reuses the link.
scenario_line3_rules() {
	PEER_OPTS=--readvertise TIEBREAK=1
	start_peer hci0 && start_peer hci1 && start_peer hci2 || return 1
	run_links "hci0:hci1 hci1:hci2 hci1:hci0 hci2:hci1" 0.5 18
}
scenario_mesh3_rules() {
	PEER_OPTS=--readvertise TIEBREAK=1
	start_peer hci0 && start_peer hci1 && start_peer hci2 || return 1
	run_links "hci0:hci1 hci0:hci2 hci1:hci2 hci1:hci0 hci2:hci0 hci2:hci1" 0.5 22
}
