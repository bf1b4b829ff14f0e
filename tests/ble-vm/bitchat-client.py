#!/usr/bin/env python3
"""Independent Bitchat GATT central for the BLE VM tests.

Uses BlueZ over D-Bus directly (dbus-python + GLib), no project code, so it
can check our peripheral from the outside. Flow: UUID-filtered LE discovery
on one adapter, connect, wait for ServicesResolved, check the characteristic
flags, subscribe, optionally write one frame (write without response), and
print each notification as `NOTIFY <hex>`.

Exit codes: 0 ok, 2 no device found / connect failed, 3 bad characteristic,
4 no notification received, 1 other error.
"""
import argparse
import sys
import time

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

BITCHAT_SVC = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"
BITCHAT_CHR = "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"
EXPECTED_FLAGS = sorted(["read", "write", "write-without-response", "notify"])
BLUEZ = "org.bluez"
OM = "org.freedesktop.DBus.ObjectManager"
PROPS = "org.freedesktop.DBus.Properties"
DEV = "org.bluez.Device1"
CHR = "org.bluez.GattCharacteristic1"
SVC = "org.bluez.GattService1"


def log(msg):
    # Diagnostics go to stderr so stdout stays machine-readable.
    print(f"[{time.monotonic():9.3f}] client: {msg}", file=sys.stderr, flush=True)


def out(msg):
    print(msg, flush=True)


class Client:
    def __init__(self, args):
        self.args = args
        self.bus = dbus.SystemBus()
        self.loop = GLib.MainLoop()
        self.adapter_path = f"/org/bluez/{args.adapter}"
        self.adapter = dbus.Interface(self.bus.get_object(BLUEZ, self.adapter_path), "org.bluez.Adapter1")
        self.om = dbus.Interface(self.bus.get_object(BLUEZ, "/"), OM)
        self.rc = 1
        self.dev_path = None
        self.chr_path = None
        self.notifications = 0
        self.discovering = False
        self.phase = "discovery"
        self.bus.add_signal_receiver(self.on_iface_added, "InterfacesAdded", OM, BLUEZ)
        self.bus.add_signal_receiver(self.on_props, "PropertiesChanged", PROPS, BLUEZ,
                                     path_keyword="path")

    def finish(self, rc, msg=None):
        if msg:
            out(msg)
        self.rc = rc
        self.loop.quit()
        return False

    # ---- discovery ----
    def wanted(self, path, props):
        if not path.startswith(self.adapter_path + "/dev_"):
            return False
        uuids = [str(u).lower() for u in props.get("UUIDs", [])]
        if BITCHAT_SVC not in uuids:
            return False
        addr = str(props.get("Address", ""))
        if self.args.address and addr.upper() != self.args.address.upper():
            return False
        if addr.upper() in self.args.exclude:
            return False
        return True

    def on_iface_added(self, path, ifaces):
        if self.phase == "discovery" and DEV in ifaces and self.wanted(path, ifaces[DEV]):
            self.found(path, ifaces[DEV])

    def start(self):
        powered = self.bus.get_object(BLUEZ, self.adapter_path).Get(
            "org.bluez.Adapter1", "Powered", dbus_interface=PROPS)
        if not powered:
            return self.finish(1, f"ERROR adapter {self.args.adapter} not powered")
        GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        if self.args.wait_incoming:
            # Tie-break rule: the peer initiates; use its link once it is up.
            GLib.timeout_add(500, self.poll_incoming)
            log(f"waiting for {self.args.address} to connect to {self.args.adapter}")
            return False
        # A clean /var/lib/bluetooth (qemu -snapshot) matters: a device that
        # bluetoothd already knows may be reported from cache.
        for path, ifaces in self.om.GetManagedObjects().items():
            if DEV in ifaces and self.wanted(path, ifaces[DEV]):
                if ifaces[DEV].get("Connected") and not self.args.address:
                    continue  # a connection someone else made; look for a fresh advertiser
                self.found(path, ifaces[DEV])
                return False
        self.adapter.SetDiscoveryFilter({"UUIDs": dbus.Array([BITCHAT_SVC], "s"),
                                         "Transport": "le", "DuplicateData": False})
        self.adapter.StartDiscovery()
        self.discovering = True
        self.t_disc = time.monotonic()
        log(f"discovering on {self.args.adapter}")
        return False

    def poll_incoming(self):
        if self.phase != "discovery":
            return False
        for path, ifaces in self.om.GetManagedObjects().items():
            d = ifaces.get(DEV)
            if (d and path.startswith(self.adapter_path + "/dev_") and d.get("Connected")
                    and str(d.get("Address", "")).upper() == self.args.address.upper()):
                self.phase = "resolve"
                self.dev_path = path
                self.dev = dbus.Interface(self.bus.get_object(BLUEZ, path), DEV)
                self.t_conn = time.monotonic()
                out(f"INCOMING {d.get('Address')} {path}")
                self.check_resolved()
                return False
        return True

    def on_timeout(self):
        if self.phase in ("discovery",):
            return self.finish(2, f"FAIL no device advertising {BITCHAT_SVC} on {self.args.adapter}")
        if self.phase != "collect":
            return self.finish(2, f"FAIL timeout during {self.phase}")
        return False

    def stop_discovery(self):
        if self.discovering:
            self.discovering = False
            try:
                self.adapter.StopDiscovery()
            except dbus.DBusException as e:
                log(f"StopDiscovery: {e}")

    def found(self, path, props):
        self.phase = "connect"
        self.dev_path = path
        self.dev = dbus.Interface(self.bus.get_object(BLUEZ, path), DEV)
        out(f"FOUND {props.get('Address')} {path}")
        if self.args.stop_discovery:
            self.stop_discovery()
        self.t_conn = time.monotonic()
        self.dev.Connect(reply_handler=self.on_connected, error_handler=self.on_connect_error,
                         timeout=self.args.timeout)

    def on_connect_error(self, e):
        # If the peer connected to us meanwhile (it is a central too), our
        # own attempt is aborted but the link exists and GATT works on it.
        # Give the Connected property a moment to catch up before failing.
        log(f"Connect failed: {e.get_dbus_name()}: {e}")
        GLib.timeout_add(1500, self.after_connect_error, f"{e.get_dbus_name()} {e}")

    def after_connect_error(self, err):
        try:
            if self.dev_prop("Connected"):
                out("REUSED-LINK")
                self.on_connected()
                return False
        except dbus.DBusException:
            pass
        self.finish(2, f"FAIL connect {self.dev_path}: {err}")
        return False

    def on_connected(self):
        log(f"connected in {time.monotonic() - self.t_conn:.2f}s")
        self.phase = "resolve"
        self.check_resolved()

    def dev_prop(self, name):
        return self.bus.get_object(BLUEZ, self.dev_path).Get(DEV, name, dbus_interface=PROPS)

    def on_props(self, iface, changed, invalidated, path=None):
        if self.phase == "discovery" and iface == DEV and path.startswith(self.adapter_path + "/dev_"):
            # A device object that already existed (e.g. the peer connected
            # to us first) changes instead of being added.
            props = self.bus.get_object(BLUEZ, path).GetAll(DEV, dbus_interface=PROPS)
            if self.wanted(path, props):
                self.found(path, props)
            return
        if path == self.dev_path and iface == DEV:
            if "ServicesResolved" in changed and self.phase == "resolve":
                self.check_resolved()
            if "Connected" in changed and not changed["Connected"] and self.phase in ("resolve", "collect"):
                log("device disconnected")
                if self.phase == "resolve":
                    self.finish(2, "FAIL disconnected before services resolved")
        elif path == self.chr_path and iface == CHR and "Value" in changed:
            self.notifications += 1
            out("NOTIFY " + bytes(changed["Value"]).hex())

    def check_resolved(self):
        if self.phase != "resolve" or not self.dev_prop("ServicesResolved"):
            return
        self.phase = "gatt"
        log(f"services resolved {time.monotonic() - self.t_conn:.2f}s after connect")
        objs = self.om.GetManagedObjects()
        svc_paths = [p for p, i in objs.items()
                     if SVC in i and p.startswith(self.dev_path + "/") and str(i[SVC]["UUID"]).lower() == BITCHAT_SVC]
        if not svc_paths:
            return self.finish(3, f"FAIL service {BITCHAT_SVC} not found on {self.dev_path}")
        chrs = [(p, i[CHR]) for p, i in objs.items()
                if CHR in i and str(i[CHR]["Service"]) in svc_paths and str(i[CHR]["UUID"]).lower() == BITCHAT_CHR]
        if not chrs:
            return self.finish(3, f"FAIL characteristic {BITCHAT_CHR} not found")
        self.chr_path, cprops = chrs[0]
        flags = sorted(str(f) for f in cprops.get("Flags", []))
        out("FLAGS " + ",".join(flags))
        if flags != EXPECTED_FLAGS:
            return self.finish(3, f"FAIL flags {flags} != expected {EXPECTED_FLAGS}")
        out(f"MTU {int(cprops.get('MTU', 0))}")
        self.chr = dbus.Interface(self.bus.get_object(BLUEZ, self.chr_path), CHR)
        self.chr.StartNotify(reply_handler=self.on_notifying, error_handler=self.on_gatt_error)

    def on_gatt_error(self, e):
        self.finish(1, f"FAIL gatt call: {e.get_dbus_name()} {e}")

    def on_notifying(self):
        self.phase = "collect"
        log(f"notifications on; collecting {self.args.duration}s")
        if self.args.write:
            frame = bytes.fromhex(self.args.write)
            self.chr.WriteValue(dbus.Array(frame, "y"), {"type": dbus.String("command")},
                                reply_handler=lambda: out(f"WROTE {frame.hex()}"),
                                error_handler=self.on_gatt_error)
        GLib.timeout_add(int(self.args.duration * 1000), self.done)

    def done(self):
        if not self.args.keep_connected:
            try:
                self.chr.StopNotify()
                self.dev.Disconnect()
            except dbus.DBusException as e:
                log(f"cleanup: {e}")
        if self.notifications == 0:
            return self.finish(4, "FAIL no notification received")
        return self.finish(0, f"OK {self.notifications} notifications")

    def run(self):
        GLib.idle_add(self.start)
        self.loop.run()
        self.stop_discovery()
        return self.rc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="hci1", help="local adapter, e.g. hci1")
    ap.add_argument("--timeout", type=float, default=30, help="seconds for discovery+connect+resolve")
    ap.add_argument("--duration", type=float, default=3, help="seconds to collect notifications")
    ap.add_argument("--write", metavar="HEX", help="frame to write (without response) after subscribing")
    ap.add_argument("--address", help="only connect to this address")
    ap.add_argument("--exclude", action="append", default=[], type=str.upper,
                    help="never connect to this address (repeatable)")
    ap.add_argument("--stop-discovery", action="store_true", help="stop discovery before connecting")
    ap.add_argument("--wait-incoming", action="store_true",
                    help="do not connect: wait for --address to connect to us, then use that link")
    ap.add_argument("--keep-connected", action="store_true", help="do not disconnect at the end")
    args = ap.parse_args()
    if args.write:
        bytes.fromhex(args.write)  # fail early on bad hex
    if args.wait_incoming and not args.address:
        ap.error("--wait-incoming needs --address")
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    try:
        return Client(args).run()
    except dbus.DBusException as e:
        out(f"FAIL dbus: {e.get_dbus_name()} {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
