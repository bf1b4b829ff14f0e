# Sourced by guest.sh. Discovery of an advertiser that appears only after the
# scanning controller (or another one) already holds an LE link. Uses the
# helpers of multilink.scenarios.sh (start_peer, start_link, check_link).
#
# Stock btdev (5.82) overwrote the report type inside ext_adv_broadcast(), so
# every actively scanning controller after the first one in btdev's list got
# the advertising PDU as a scan response (event type 0x1b). The kernel then
# reports it with MGMT_DEV_FOUND_SCAN_RSP (flags 0x0020) and bluetoothd
# creates no Device1. Run with `debug` to get the INFO adv-report counts.

# late_link X Y DURATION: start_link, then wait until X gets Y's notifications.
late_link() {
	start_link "$1" "$2" "$3"
	wait_for "$SCEN_DIR/link-$1-$2.log" "^NOTIFY $(payload_of "$2")\$" 50 ||
		{ echo "INFO $1->$2 not up: $(grep -E '^(FAIL|ERROR)' "$SCEN_DIR/link-$1-$2.log" | head -n1)"; return 1; }
	echo "INFO $1->$2 up after $(grep -o 'connected in [0-9.]*s' "$SCEN_DIR/link-$1-$2.log" | head -n1)"
}

# A scanner that never finds its target: keeps hciX in active discovery.
bystander_scan() {
	bg "$SCEN_DIR/scan-$1.log" python3 "$SHARE/bitchat-client.py" --adapter "$1" \
		--address 00:00:00:00:00:00 --timeout "$2"
	sleep 1
}

# late_finish "X:Y ...": wait for the link clients, print LINK lines, and
# (with `debug`) how each adapter's bluetoothd saw advertising reports.
late_finish() {
	local l bad=0 x
	for p in "${LINK_PIDS[@]}"; do wait "$p"; done
	for l in $1; do
		check_link "${l%%:*}" "${l##*:}" || bad=$((bad + 1))
	done
	for x in $(echo "$1" | tr ' :' '\n\n' | sort -u); do
		echo "CONNS $x: $(hcitool -i "$x" con 2>/dev/null | tail -n +2 | tr '\n\t' ' ' || true)"
	done
	if grep -q device_found_callback "$SCEN_DIR/bluetoothd.log" 2>/dev/null; then
		for x in hci0 hci1 hci2 hci3; do
			echo "INFO $x device_found: flags0x0000=$(grep -c "device_found_callback() $x .*flags 0x0000 " "$SCEN_DIR/bluetoothd.log")" \
				"scan_rsp(0x0020)=$(grep -c "device_found_callback() $x .*flags 0x0020 " "$SCEN_DIR/bluetoothd.log")"
		done
	fi
	[ $bad = 0 ] || fail "$bad link(s) failed"
}

# hci0 central to hci1; then hci2 starts advertising; hci0 (connected,
# still discovering) must find hci2 and connect.
scenario_late_central() {
	LINK_PIDS=()
	start_peer hci1 || return 1
	late_link hci0 hci1 40 || { late_finish "hci0:hci1"; return 1; }
	start_peer hci2 || return 1
	late_link hci0 hci2 12
	late_finish "hci0:hci1 hci0:hci2"
}

# Same with the connected central at a higher index than another active
# scanner (hci0 keeps discovering for an address that never shows up).
scenario_late_central_hi() {
	LINK_PIDS=()
	bystander_scan hci0 120
	start_peer hci1 || return 1
	late_link hci2 hci1 40 || { late_finish "hci2:hci1"; return 1; }
	start_peer hci3 || return 1
	late_link hci2 hci3 12
	late_finish "hci2:hci1 hci2:hci3"
}

# hci1 is a connected peripheral (hci0 -> hci1); then hci2 starts
# advertising and hci1 must discover it and connect as central.
scenario_late_peripheral() {
	LINK_PIDS=()
	start_peer hci1 || return 1
	late_link hci0 hci1 40 || { late_finish "hci0:hci1"; return 1; }
	start_peer hci2 || return 1
	late_link hci1 hci2 12
	late_finish "hci0:hci1 hci1:hci2"
}

# hci0 connects to the peripheral hci1; a few seconds after that link is up
# hci2 starts scanning for hci1. Only works if hci1 advertises again after
# its first connection (--readvertise; see FINDINGS.md, A).
scenario_late_third() {
	LINK_PIDS=()
	start_peer hci1 || return 1
	late_link hci0 hci1 40 || { late_finish "hci0:hci1"; return 1; }
	sleep 5
	late_link hci2 hci1 12
	late_finish "hci0:hci1 hci2:hci1"
}
scenario_late_third_readv() { PEER_OPTS=--readvertise scenario_late_third; }
